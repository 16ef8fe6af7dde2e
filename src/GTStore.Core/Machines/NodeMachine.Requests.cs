using GTStore.Core.Messages;

namespace GTStore.Core;

/// <summary>Where a request's answer goes: a client connected to this node, or the forwarder that sent it.</summary>
internal readonly record struct ReplyTarget(long Handle, NodeId Node, long OpId)
{
    public static ReplyTarget ToClient(long handle) => new(handle, NodeId.None, 0);

    public static ReplyTarget ToNode(NodeId node, long opId) => new(0, node, opId);
}

// The request path (DESIGN.md "Request path"): client -> forwarder -> coordinator -> replicas.
public sealed partial class NodeMachine
{
    /// <summary>
    /// What a sloppy request tracks: the nodes it has used, and which stand-in answers for which
    /// replica. A replica that fails or stays silent past <see cref="SloppyAfterMs"/> is replaced
    /// once by the next node on the ring.
    /// </summary>
    private abstract class SloppyOp(ReplyTarget target, byte[] key, ulong hash, IReadOnlyList<NodeId> replicas, long nowMs, long deadlineMs, long sloppyAfterMs)
    {
        private HashSet<NodeId>? _used;
        private HashSet<NodeId>? _replaced;
        private Dictionary<NodeId, NodeId>? _standInFor;

        public ReplyTarget Target { get; } = target;
        public byte[] Key { get; } = key;
        public ulong Hash { get; } = hash;
        public long DeadlineMs { get; } = deadlineMs;
        public long SloppyAtMs { get; } = nowMs + sloppyAfterMs;

        // The sets below serve only a request that goes sloppy, so they are made when it does.

        /// <summary>Nodes the request went to: its replicas, then any stand-ins.</summary>
        public HashSet<NodeId> Used => _used ??= [.. replicas];

        /// <summary>Replicas a stand-in was claimed for.</summary>
        public HashSet<NodeId> Replaced => _replaced ??= [];

        public bool WasReplaced(NodeId replica) => _replaced?.Contains(replica) == true;

        /// <summary>The replica a node answers for: itself, or the one it stands in for.</summary>
        public NodeId AnswersFor(NodeId node) => _standInFor?.GetValueOrDefault(node, node) ?? node;

        public void StandsIn(NodeId standIn, NodeId replica)
        {
            Used.Add(standIn);
            (_standInFor ??= [])[standIn] = replica;
        }

        public abstract IEnumerable<NodeId> Waiting { get; }
    }

    private sealed class WriteOp(ReplyTarget target, byte[] key, ulong hash, VersionedValue value, WriteQuorum quorum, long nowMs, long deadlineMs, long sloppyAfterMs)
        : SloppyOp(target, key, hash, quorum.Targets, nowMs, deadlineMs, sloppyAfterMs)
    {
        public VersionedValue Value { get; } = value;
        public WriteQuorum Quorum { get; } = quorum;
        /// <summary>The last reason a replica gave for refusing (e.g. its disk is full), for the failure message.</summary>
        public string? LastError { get; set; }
        public override IEnumerable<NodeId> Waiting => Quorum.Targets.Where(t => !Quorum.HasAnswered(t));
    }

    private sealed class ForwardOp(ReplyTarget target, ClientRequest request, NodeId[] candidates)
    {
        public ReplyTarget Target { get; } = target;
        public ClientRequest Request { get; } = request;
        public NodeId[] Candidates { get; } = candidates;
        public int Attempt { get; set; }
        public long DeadlineMs { get; set; }
        /// <summary>When an unanswered forward moves on to the next coordinator.</summary>
        public long RetryAtMs { get; set; }
        /// <summary>An earlier coordinator may have the request (it went silent rather than refusing the connection).</summary>
        public bool MaybeDelivered { get; set; }
    }

    private readonly Dictionary<long, WriteOp> _writes = [];
    private readonly Dictionary<long, ReadOp> _reads = [];
    private readonly Dictionary<long, ForwardOp> _forwards = [];

    /// <summary>Requests this node is coordinating or forwarding.</summary>
    public int OperationsInFlight => _writes.Count + _reads.Count + _forwards.Count;

    /// <summary>Client requests this node received and coordinated itself.</summary>
    public long RequestsCoordinated { get; private set; }

    /// <summary>Client requests this node received and forwarded to a replica of the key (writes for which it is not one).</summary>
    public long RequestsForwarded { get; private set; }

    /// <summary>A client request arriving on a connection; the reply goes back with <paramref name="handle"/>.</summary>
    public void OnClientRequest(long nowMs, long handle, ClientRequest request)
    {
        var target = ReplyTarget.ToClient(handle);
        if (Refusal(request) is { } refusal)
        {
            Deliver(target, refusal);
            return;
        }
        var replicas = Current.PreferenceList(KeyHash.Of(request.Key), Config.ReplicationFactor);
        // A read stamps nothing, so any node can coordinate it: asking the replicas directly saves
        // the forward's two hops. A write goes to a replica, whose clock stamps its version.
        if (request.Op == ClientOp.Get || Array.IndexOf(replicas, Self) >= 0)
        {
            RequestsCoordinated++;
            Coordinate(nowMs, target, request);
            return;
        }
        ForwardToReplica(nowMs, target, request, replicas);
    }

    /// <summary>
    /// Hands a write this node does not replicate to one of its replicas, healthy ones first
    /// (suspects stay as a last resort). A method of its own: the lambda over <c>nowMs</c> inside
    /// <see cref="OnClientRequest"/> would allocate its closure on every call, forwarded or not.
    /// </summary>
    private void ForwardToReplica(long nowMs, ReplyTarget target, ClientRequest request, NodeId[] replicas)
    {
        var candidates = replicas.OrderBy(r => IsSuspect(r, nowMs) ? 1 : 0).ToArray();
        RequestsForwarded++;
        var opId = NextOpId();
        var op = new ForwardOp(target, request, candidates) { DeadlineMs = ForwardDeadline(nowMs), RetryAtMs = nowMs + Config.RequestTimeoutMs / 2 };
        _forwards[opId] = op;
        _out.Send(candidates[0], new Forward(opId, Self, request));
    }

    private long ForwardDeadline(long nowMs) => nowMs + Config.RequestTimeoutMs * 3 / 2;

    /// <summary>Why this node cannot take the request now, or null.</summary>
    private ClientReply? Refusal(ClientRequest request)
    {
        if (HasLeft)
            return new ClientReply(ReplyStatus.Moved, Self, null, $"{Self} has left the cluster; ask the manager for another forwarder");
        if (!Self.IsNode || !Current.Contains(Self) && Current.NodeCount == 0)
            return new ClientReply(ReplyStatus.Moved, Self, null, "this node has not joined the cluster yet; ask another");
        var n = Config.ReplicationFactor;
        if (Current.NodeCount < n)
        {
            return Failed($"the cluster has {Current.NodeCount} of the {n} nodes that replication factor {n} needs; " +
                          "no request is accepted until enough nodes join");
        }
        if (OperationsInFlight >= Limits.CoordinatorRequestsInFlightMax)
            return Failed($"{Self} is overloaded: {OperationsInFlight} requests in flight (limit {Limits.CoordinatorRequestsInFlightMax})");
        var sizeError = Config.CheckSizes(request.Key.Length, request.Op == ClientOp.Put ? request.Value?.Length ?? 0 : null);
        return sizeError is null ? null : new ClientReply(ReplyStatus.Invalid, Self, null, sizeError);
    }

    private ClientReply Failed(string why) => new(ReplyStatus.Failed, Self, null, why);

    private void Deliver(ReplyTarget target, ClientReply reply)
    {
        if (target.Node.IsNode)
            _out.Send(target.Node, new ForwardReply(target.OpId, Self, reply));
        else
            _out.Reply(target.Handle, reply);
    }

    private void Coordinate(long nowMs, ReplyTarget target, ClientRequest request)
    {
        if (Refusal(request) is { } refusal)
        {
            Deliver(target, refusal);
            return;
        }
        if (request.Op == ClientOp.Get)
            StartRead(nowMs, target, request.Key);
        else
            StartWrite(nowMs, target, request);
    }

    // ---- writes ------------------------------------------------------------------------------

    private void StartWrite(long nowMs, ReplyTarget target, ClientRequest request)
    {
        var hash = KeyHash.Of(request.Key);
        var n = Config.ReplicationFactor;
        // Never stamp below what this node holds for the key, so an overwrite always wins.
        var held = _store.VersionOf(hash, request.Key)?.Timestamp ?? 0;
        var version = new Version(_clock.Next(nowMs, held), Self.Value);
        var value = new VersionedValue(version, request.Op == ClientOp.Put ? request.Value ?? [] : null);
        var quorum = new WriteQuorum(Current.PreferenceList(hash, n), Pending?.PreferenceList(hash, n), Config.WriteQuorum);
        var targets = quorum.Targets;
        string? localFailed = null;
        if (targets.Contains(Self))
        {
            try
            {
                _store.Put(hash, request.Key, value);
                quorum.Ack(Self);
            }
            catch (StorageException e)
            {
                // This disk refuses it (e.g. full): like any failed replica, a stand-in takes our copy.
                localFailed = $"{Self} could not store the write: {e.Message}";
            }
        }
        var opId = NextOpId();
        var op = new WriteOp(target, request.Key, hash, value, quorum, nowMs, nowMs + Config.RequestTimeoutMs, SloppyAfterMs);
        _writes[opId] = op;
        foreach (var replica in targets)
        {
            if (replica == Self)
                continue;
            if (IsSuspect(replica, nowMs))
                ReplaceWriteReplica(nowMs, opId, op, replica);
            else
                _out.Send(replica, new ReplicaWrite(opId, Self, request.Key, value));
        }
        if (localFailed is not null)
        {
            op.LastError = localFailed;
            ReplaceWriteReplica(nowMs, opId, op, Self);
        }
        FinishWriteIfDecided(opId, op);
    }

    /// <summary>
    /// Picks the stand-in for <paramref name="replica"/> once per request: false if it was already
    /// replaced; <paramref name="standIn"/> is None when the ring has no one left.
    /// </summary>
    private bool TryClaimStandIn(SloppyOp op, NodeId replica, long nowMs, out NodeId standIn)
    {
        standIn = NodeId.None;
        if (!op.Replaced.Add(replica))
            return false;
        standIn = NextStandIn(op.Hash, op.Used, nowMs);
        if (standIn.IsNode)
            op.StandsIn(standIn, replica);
        return true;
    }

    /// <summary>Sends the write to a stand-in for <paramref name="replica"/>, or gives up on that replica if none is left.</summary>
    private void ReplaceWriteReplica(long nowMs, long opId, WriteOp op, NodeId replica)
    {
        if (!TryClaimStandIn(op, replica, nowMs, out var standIn))
            return;
        if (!standIn.IsNode)
        {
            op.Quorum.Fail(replica);
            return;
        }
        if (standIn == Self)
        {
            if (TakeHint(replica, op.Key, op.Value))
                op.Quorum.Ack(replica);
            else
                op.Quorum.Fail(replica);
            return;
        }
        _out.Send(standIn, new ReplicaWrite(opId, Self, op.Key, op.Value, HintFor: replica));
    }

    private void OnReplicaWriteAck(long nowMs, ReplicaWriteAck m)
    {
        if (m.Ok)
            HeardFrom(m.From);
        if (OnHandoffAck(nowMs, m))
            return;
        if (!_writes.TryGetValue(m.OpId, out var op))
            return; // Late acknowledgement after the quorum decided (the seed ignores it).
        var replica = op.AnswersFor(m.From);
        if (!m.Ok)
            op.LastError = m.Error ?? op.LastError;
        if (m.Ok)
        {
            op.Quorum.Ack(replica);
        }
        else if (replica == m.From && m.Error?.Contains("not a replica", StringComparison.Ordinal) == true)
        {
            op.Quorum.Fail(replica); // Rings disagree: a stand-in would not help.
        }
        else
        {
            // The replica (or its stand-in) could not store it: try the next node on the ring.
            op.Replaced.Remove(replica);
            ReplaceWriteReplica(nowMs, m.OpId, op, replica);
        }
        FinishWriteIfDecided(m.OpId, op);
    }

    private void FinishWriteIfDecided(long opId, WriteOp op)
    {
        switch (op.Quorum.State)
        {
            case QuorumState.Reached:
                _writes.Remove(opId);
                Deliver(op.Target, new ClientReply(ReplyStatus.Ok, Self, op.Value with { Value = null }, null));
                break;
            case QuorumState.Impossible:
                _writes.Remove(opId);
                // A replica that stored the value may serve it later: that is not a failure.
                var cause = op.LastError is null ? "" : $" (last refusal: {op.LastError})";
                Deliver(op.Target, op.Quorum.AckCount > 0
                    ? new ClientReply(ReplyStatus.Unknown, Self, null, op.Quorum.Describe() + cause + "; the write may or may not become visible")
                    : Failed(op.Quorum.Describe() + cause + "; nothing was written"));
                break;
        }
    }

    // ---- forwarding --------------------------------------------------------------------------

    private void OnForwardReply(long nowMs, ForwardReply m)
    {
        if (m.Reply.Status == ReplyStatus.Moved)
        {
            // That coordinator did nothing (it is restarting or has left): try the next one.
            RetryForward(nowMs, m.OpId, m.From);
            return;
        }
        if (!_forwards.Remove(m.OpId, out var op))
            return;
        var reply = m.Reply;
        // An earlier coordinator went silent and may have applied the write: this one's refusal is not a failure.
        if (op.MaybeDelivered && op.Request.Op != ClientOp.Get && reply.Status == ReplyStatus.Failed)
            reply = reply with { Status = ReplyStatus.Unknown, Error = $"{reply.Error}; an earlier coordinator may have applied the write" };
        Deliver(op.Target, reply);
    }

    private void RetryForward(long nowMs, long opId, NodeId unreachable)
    {
        if (!_forwards.TryGetValue(opId, out var op) || op.Candidates[op.Attempt] != unreachable)
            return;
        op.Attempt++;
        if (op.Attempt < op.Candidates.Length)
        {
            op.DeadlineMs = ForwardDeadline(nowMs);
            op.RetryAtMs = nowMs + Config.RequestTimeoutMs / 2;
            _out.Send(op.Candidates[op.Attempt], new Forward(opId, Self, op.Request));
            return;
        }
        _forwards.Remove(opId);
        var tried = string.Join(", ", op.Candidates);
        Deliver(op.Target, op.MaybeDelivered && op.Request.Op != ClientOp.Get
            ? new ClientReply(ReplyStatus.Unknown, Self, null, $"no coordinator answered (tried {tried}); the write may or may not become visible")
            : Failed($"no coordinator reachable: tried {tried}"));
    }

    /// <summary>Replicas silent past the sloppy deadline are suspected and replaced by stand-ins; unanswered forwards move on.</summary>
    private void GoSloppy(long nowMs)
    {
        foreach (var (opId, op) in _writes.Where(kv => kv.Value.SloppyAtMs <= nowMs).ToList())
        {
            foreach (var replica in op.Waiting.Where(r => r != Self && !op.WasReplaced(r)).ToList())
            {
                Suspect(replica, nowMs);
                ReplaceWriteReplica(nowMs, opId, op, replica);
            }
            FinishWriteIfDecided(opId, op);
        }
        foreach (var (opId, op) in _reads.Where(kv => kv.Value.SloppyAtMs <= nowMs && !kv.Value.Replied).ToList())
        {
            // Past the deadline, go wide: a stand-in for each silent replica and every spare at once.
            foreach (var replica in op.Waiting.Where(r => r != Self && !op.WasReplaced(r)).ToList())
            {
                Suspect(replica, nowMs);
                ReplaceReadReplica(nowMs, opId, op, replica, spareFirst: false);
            }
            while (op.TryTakeSpare(out var spare))
                AskReplica(nowMs, opId, op, spare);
            AdvanceRead(nowMs, opId, op);
        }
        foreach (var (opId, op) in _forwards.Where(kv => kv.Value.RetryAtMs <= nowMs).ToList())
        {
            if (op.Attempt + 1 >= op.Candidates.Length)
            {
                op.RetryAtMs = long.MaxValue;
                continue;
            }
            Suspect(op.Candidates[op.Attempt], nowMs);
            op.MaybeDelivered = true;
            op.Attempt++;
            op.RetryAtMs = nowMs + Config.RequestTimeoutMs / 2;
            // The first answer wins; a late one from the earlier coordinator finds no op and is dropped.
            _out.Send(op.Candidates[op.Attempt], new Forward(opId, Self, op.Request));
        }
    }

    private void ExpireOperations(long nowMs)
    {
        foreach (var (opId, op) in _writes.Where(kv => kv.Value.DeadlineMs <= nowMs).ToList())
        {
            _writes.Remove(opId);
            Deliver(op.Target, new ClientReply(ReplyStatus.Unknown, Self, null,
                $"timed out after {Config.RequestTimeoutMs} ms: {op.Quorum.Describe()}; the write may or may not become visible"));
        }
        foreach (var (opId, op) in _reads.Where(kv => kv.Value.DeadlineMs <= nowMs).ToList())
        {
            _reads.Remove(opId);
            if (!op.Replied)
                Deliver(op.Target, Failed($"timed out after {Config.RequestTimeoutMs} ms: {op.Quorum.Describe()}"));
            Repair(op);
        }
        foreach (var (opId, op) in _forwards.Where(kv => kv.Value.DeadlineMs <= nowMs).ToList())
        {
            _forwards.Remove(opId);
            var coordinator = op.Candidates[op.Attempt];
            Deliver(op.Target, op.Request.Op == ClientOp.Get
                ? Failed($"timed out waiting for coordinator {coordinator}")
                : new ClientReply(ReplyStatus.Unknown, Self, null, $"timed out waiting for coordinator {coordinator}; the write may or may not become visible"));
        }
    }
}
