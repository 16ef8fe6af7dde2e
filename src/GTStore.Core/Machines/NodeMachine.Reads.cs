using GTStore.Core.Messages;

namespace GTStore.Core;

// The read path (DESIGN.md "Request path", Read): R replicas asked, spares and stand-ins for the
// ones that fail or stay silent, the latest version answered, stale replicas repaired.
public sealed partial class NodeMachine
{
    private sealed class ReadOp(ReplyTarget target, byte[] key, ulong hash, ReadQuorum quorum, NodeId[] order, long nowMs, long deadlineMs, long sloppyAfterMs)
        : SloppyOp(target, key, hash, quorum.Replicas, nowMs, deadlineMs, sloppyAfterMs)
    {
        public ReadQuorum Quorum { get; } = quorum;
        public bool Replied { get; set; }

        /// <summary>This node's own copy, once read: other replicas are then asked for their version only.</summary>
        public (bool Read, VersionedValue? Value) Own { get; set; }

        // Replicas asked so far (R at first, more only when one fails or stays silent), and the
        // spares: the rest of the asking order, taken from the front. Each replica is asked at
        // most once, so the order's length bounds both; a list and a queue per read were half of
        // what a read allocated besides its messages.
        private readonly NodeId[] _asked = new NodeId[order.Length];
        private int _askedCount;
        private int _nextSpare = quorum.Required; // The order holds every replica, so never past its end.

        public ReadOnlySpan<NodeId> Asked => _asked.AsSpan(0, _askedCount);

        public void MarkAsked(NodeId replica) => _asked[_askedCount++] = replica;

        /// <summary>Replicas not asked yet, in the order they would be.</summary>
        public int SpareCount => order.Length - _nextSpare;

        public bool TryTakeSpare(out NodeId spare)
        {
            if (_nextSpare >= order.Length)
            {
                spare = default;
                return false;
            }
            spare = order[_nextSpare++];
            return true;
        }

        private HashSet<NodeId>? _covered;

        /// <summary>Asked replicas a spare was already asked in place of.</summary>
        public HashSet<NodeId> Covered => _covered ??= [];

        public bool AllAskedAnswered
        {
            get
            {
                foreach (var r in Asked)
                {
                    if (!Quorum.HasAnswered(r) && _covered?.Contains(r) != true)
                        return false;
                }
                return true;
            }
        }

        public override IEnumerable<NodeId> Waiting => _asked.Take(_askedCount).Where(r => !Quorum.HasAnswered(r));
    }

    /// <summary>
    /// Asks R of the N replicas (this node first, as its answer costs no message; suspects last;
    /// the others in an order that rotates with each read, so that reads of one key spread over its
    /// replicas) and keeps the others as spares for a replica that fails or stays silent: any R replicas
    /// overlap any W, so R answers hold the latest acknowledged write. Anti-entropy, not the read,
    /// keeps the replicas that were not asked up to date.
    /// </summary>
    private void StartRead(long nowMs, ReplyTarget target, byte[] key)
    {
        var hash = KeyHash.Of(key);
        var replicas = Current.PreferenceList(hash, Config.ReplicationFactor);
        var quorum = new ReadQuorum(replicas, Config.ReadQuorum);
        var opId = NextOpId();
        var order = AskingOrder(replicas, opId, nowMs);
        var op = new ReadOp(target, key, hash, quorum, order, nowMs, nowMs + Config.RequestTimeoutMs, SloppyAfterMs);
        _reads[opId] = op;
        for (var i = 0; i < quorum.Required; i++)
            AskReplica(nowMs, opId, op, order[i]);
        AdvanceRead(nowMs, opId, op);
    }

    /// <summary>The order replicas are asked in: this node, then the healthy ones rotated by the read's id, then suspects.</summary>
    private NodeId[] AskingOrder(NodeId[] replicas, long opId, long nowMs)
    {
        var order = new NodeId[replicas.Length];
        var n = 0;
        if (Array.IndexOf(replicas, Self) >= 0)
            order[n++] = Self;
        for (var suspects = 0; suspects < 2; suspects++)
        {
            for (var i = 0; i < replicas.Length; i++)
            {
                var r = replicas[(int)((i - opId % replicas.Length + replicas.Length) % replicas.Length)];
                if (r != Self && IsSuspect(r, nowMs) == (suspects == 1))
                    order[n++] = r;
            }
        }
        return order;
    }

    private void AskReplica(long nowMs, long opId, ReadOp op, NodeId replica)
    {
        op.MarkAsked(replica);
        if (replica == Self)
        {
            op.Own = (true, _store.Get(op.Hash, op.Key));
            op.Quorum.Answer(Self, op.Own.Value);
        }
        else if (IsSuspect(replica, nowMs))
            ReplaceReadReplica(nowMs, opId, op, replica);
        else
            _out.Send(replica, new ReplicaRead(opId, Self, op.Key, VersionOnly: op.Own.Read));
    }

    /// <summary>
    /// A version-only answer: the same version as our own copy is our copy (a version names one
    /// write); an older one is stale and only needs repair; a newer one is worth its value, so the
    /// replica is asked again for the whole copy and counts once that arrives.
    /// </summary>
    private void OnVersionOnlyAnswer(long opId, ReadOp op, NodeId replica, ReplicaReadReply m)
    {
        var own = op.Own.Value;
        switch (m.Value)
        {
            case null:
                op.Quorum.Answer(replica, null);
                break;
            case { } held when own is { } mine && held.Version == mine.Version:
                op.Quorum.Answer(replica, mine);
                break;
            case { } held when own is { } mine && held.Version < mine.Version:
                op.Quorum.Answer(replica, held); // Never the latest: its missing bytes are never answered.
                break;
            default:
                _out.Send(m.From, new ReplicaRead(opId, Self, op.Key));
                break;
        }
    }

    /// <summary>
    /// In place of <paramref name="replica"/>, asks a spare replica if one is left (and
    /// <paramref name="spareFirst"/>), else a stand-in (which answers from its store and hints).
    /// </summary>
    private void ReplaceReadReplica(long nowMs, long opId, ReadOp op, NodeId replica, bool spareFirst = true)
    {
        if (spareFirst && op.SpareCount > 0 && op.Covered.Add(replica) && op.TryTakeSpare(out var spare))
        {
            AskReplica(nowMs, opId, op, spare);
            return;
        }
        if (!TryClaimStandIn(op, replica, nowMs, out var standIn))
            return;
        if (!standIn.IsNode)
        {
            op.Quorum.Fail(replica);
            return;
        }
        if (standIn == Self)
        {
            op.Quorum.Answer(replica, StandInAnswer(op.Hash, op.Key));
            return;
        }
        _out.Send(standIn, new ReplicaRead(opId, Self, op.Key, HintFor: replica));
    }

    private void OnReplicaReadReply(long nowMs, ReplicaReadReply m)
    {
        if (!_reads.TryGetValue(m.OpId, out var op))
            return;
        var replica = op.AnswersFor(m.From);
        if (m.Ok)
        {
            HeardFrom(m.From);
            if (m.Value is { } v)
                _clock.Observe(v.Version.Timestamp);
            if (m.VersionOnly)
                OnVersionOnlyAnswer(m.OpId, op, replica, m);
            else
                op.Quorum.Answer(replica, m.Value);
        }
        else if (replica == m.From && m.Error?.Contains("not a replica", StringComparison.Ordinal) == true)
        {
            op.Quorum.Fail(replica); // Rings disagree: a stand-in would not help, a spare replica may.
            if (op.SpareCount > 0 && op.Covered.Add(replica) && op.TryTakeSpare(out var spare))
                AskReplica(nowMs, m.OpId, op, spare);
        }
        else
        {
            op.Replaced.Remove(replica);
            ReplaceReadReplica(nowMs, m.OpId, op, replica);
        }
        AdvanceRead(nowMs, m.OpId, op);
    }

    private void AdvanceRead(long nowMs, long opId, ReadOp op)
    {
        // Every asked replica answered and the quorum still waits (they all said "not found"):
        // the next replica may hold what a sloppy write left on it.
        while (op.Quorum.State == QuorumState.Waiting && op.AllAskedAnswered && op.TryTakeSpare(out var spare))
            AskReplica(nowMs, opId, op, spare);
        if (!op.Replied)
        {
            switch (op.Quorum.State)
            {
                case QuorumState.Reached:
                    op.Replied = true;
                    Deliver(op.Target, op.Quorum.Latest() is { IsTombstone: false } latest
                        ? new ClientReply(ReplyStatus.Ok, Self, latest, null)
                        : new ClientReply(ReplyStatus.NotFound, Self, null, null));
                    break;
                case QuorumState.Impossible:
                    op.Replied = true;
                    Deliver(op.Target, Failed(op.Quorum.Describe()));
                    break;
            }
        }
        if (op.Quorum.AllAnswered || op.Replied && op.AllAskedAnswered)
        {
            _reads.Remove(opId);
            Repair(op);
        }
    }

    /// <summary>Read repair: replicas that answered with an older version get the latest.</summary>
    private void Repair(ReadOp op)
    {
        if (op.Quorum.Latest() is not { } latest)
            return;
        foreach (var stale in op.Quorum.Stale())
        {
            if (stale == Self)
            {
                // The ring may have moved on since the read started: keep no copy we no longer own.
                if (IsReplica(op.Hash))
                    TryStore(op.Hash, op.Key, latest);
            }
            else
                _out.Send(stale, new ReplicaWrite(0, Self, op.Key, latest));
        }
    }

    /// <summary>A best-effort local write (repair): a refusing disk leaves the copy stale, and later repair retries.</summary>
    private bool TryStore(ulong hash, byte[] key, VersionedValue value)
    {
        if (WasPurged(hash, key, value.Version))
            return false; // Superseded by a tombstone purged less than the grace ago (NodeMachine.Purge).
        try
        {
            return _store.Put(hash, key, value);
        }
        catch (StorageException)
        {
            return false;
        }
    }
}
