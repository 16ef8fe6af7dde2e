using GTStore.Core.Messages;

namespace GTStore.Core;

/// <summary>
/// The logic of one storage node as a state machine: requests, messages and ticks go in; messages,
/// replies and storage writes come out. Every node is a forwarder (for its clients) and a
/// coordinator (for keys whose preference list it is in, or that are forwarded to it). The same
/// code runs over sockets in <c>gtstore node</c> and in the deterministic simulation.
/// </summary>
public sealed partial class NodeMachine
{
    private readonly IStorageEngine _store;
    private readonly Outbox _out;
    private readonly int _pid;
    private readonly HybridClock _clock = new();
    private long _nextOpId = 1;
    private long _lastHeartbeatMs;

    public NodeMachine(IStorageEngine store, Outbox outbox, int pid)
    {
        _store = store;
        _out = outbox;
        _pid = pid;
    }

    public NodeId Self { get; private set; } = NodeId.None;

    public ClusterConfig Config { get; private set; } = new();

    public Ring Current { get; private set; } = Ring.Empty;

    /// <summary>The ring being transferred to, while a membership change is in progress.</summary>
    public Ring? Pending { get; private set; }

    public IStorageEngine Store => _store;

    /// <summary>The node handed off its data and left; it only finishes what is in flight.</summary>
    public bool HasLeft { get; private set; }

    /// <summary>Nothing left to finish before a node that left may exit: no request in flight, no hint held, no handover streaming.</summary>
    public bool IsDrained => OperationsInFlight == 0 && HintCount == 0 && HandoversInProgress == 0;

    /// <summary>The manager accepted this node and gave it its id.</summary>
    public void OnJoined(NodeId self, ClusterConfig config)
    {
        Self = self;
        Config = config;
        // A ring update may have come in before the join's answer; acknowledge it now, and drop
        // what the committed ring no longer gives us (OnRingUpdate could not: Self was None).
        if (Current.Epoch > 0)
        {
            if (Pending is null && Current.Contains(Self))
                DropUnownedRanges();
            _out.Send(NodeId.Manager, new RingAck(Self, Current.Epoch, Pending?.Epoch ?? 0));
        }
    }

    public NodeStatsReply Stats()
    {
        var cache = _store.ValueCacheStats ?? default;
        return new(Self, _pid, _store.Count, Current.Epoch, Pending is not null, _store.Name, HintCount, TombstonesPurged: TombstonesPurged,
            RequestsCoordinated: RequestsCoordinated, RequestsForwarded: RequestsForwarded, Handovers: HandoversInProgress,
            ValueCacheHits: cache.Hits, ValueCacheMisses: cache.Misses, ValueCacheBytes: cache.Bytes, Tombstones: _store.TombstoneCount ?? 0);
    }

    /// <summary>
    /// Each slot's replicas for Redis Cluster clients (CLUSTER SLOTS): the current ring's
    /// preference lists, with replicas under suspicion moved last, so that a client sends each key
    /// to a live replica, which then coordinates it without a forward.
    /// </summary>
    public IReadOnlyList<SlotRange> SlotMap(long nowMs) =>
        [.. Current.SlotRanges(Config.ReplicationFactor)
            .Select(r => r with { Replicas = [.. r.Replicas.OrderBy(n => IsSuspect(n, nowMs) ? 1 : 0)] })];

    /// <summary>Whether this node currently avoids <paramref name="node"/> because it did not answer.</summary>
    public bool IsSuspected(NodeId node, long nowMs) => IsSuspect(node, nowMs);

    /// <summary>
    /// A hint that <paramref name="input"/> (a message or a client request) is about to be
    /// applied: the store starts loading what a read or write of its key will touch, so that a
    /// host applying a batch of inputs overlaps their memory misses instead of taking them one by
    /// one. Changes nothing.
    /// </summary>
    public void Prefetch(object? input)
    {
        var key = input switch
        {
            ReplicaWrite m => m.Key,
            ReplicaRead m => m.Key,
            ClientRequest m => m.Key,
            _ => null,
        };
        if (key is not null)
            _store.Prefetch(KeyHash.Of(key));
    }

    /// <summary>A message from another node or the manager.</summary>
    public void OnMessage(long nowMs, Message message)
    {
        switch (message)
        {
            case ReplicaWrite { HintFor.IsNode: true } m when m.HintFor != Self: OnHintedWrite(m); break;
            case ReplicaWrite m: OnReplicaWrite(m); break;
            case ReplicaWriteAck m: OnReplicaWriteAck(nowMs, m); break;
            case ReplicaRead { HintFor.IsNode: true } m when m.HintFor != Self: OnHintedRead(m); break;
            case ReplicaRead m: OnReplicaRead(m); break;
            case ReplicaReadReply m: OnReplicaReadReply(nowMs, m); break;
            case Forward m: Coordinate(nowMs, ReplyTarget.ToNode(m.From, m.OpId), m.Request); break;
            case ForwardReply m: OnForwardReply(nowMs, m); break;
            case TransferBatch m: OnTransferBatch(m); break;
            case TransferBatchAck m: OnTransferBatchAck(nowMs, m); break;
            case SyncDigest m: OnSyncDigest(m); break;
            case SyncParts m: OnSyncParts(nowMs, m); break;
            case SyncEntries m: OnSyncEntries(m); break;
            case PurgeProposal m: OnPurgeProposal(m); break;
            case PurgeConfirm m: OnPurgeConfirm(nowMs, m); break;
            case PurgeCommit m: OnPurgeCommit(nowMs, m); break;
            case PurgeFloor m: OnPurgeFloor(nowMs, m); break;
            case RingUpdate m: OnRingUpdate(nowMs, m); break;
            case StartTransfers m: OnStartTransfers(nowMs, m); break;
            case LeaveDone m when m.Node == Self: OnLeaveDone(nowMs); break;
            default: break; // Unknown or misrouted messages are dropped; the sender's timeout covers them.
        }
    }

    /// <summary>A message to <paramref name="peer"/> could not be delivered (connection refused or lost).</summary>
    public void OnUnreachable(long nowMs, NodeId peer, Message message)
    {
        switch (message)
        {
            case ReplicaWrite { OpId: > 0 } m:
                Suspect(peer, nowMs);
                OnReplicaWriteAck(nowMs, new ReplicaWriteAck(m.OpId, peer, false, $"{peer} unreachable"));
                break;
            case ReplicaRead m:
                Suspect(peer, nowMs);
                OnReplicaReadReply(nowMs, new ReplicaReadReply(m.OpId, peer, false, null, $"{peer} unreachable"));
                break;
            case Forward m:
                Suspect(peer, nowMs);
                RetryForward(nowMs, m.OpId, peer);
                break;
            default:
                break; // Transfers and manager messages are retried by timers.
        }
    }

    /// <summary>Time passes: expire requests and resend unacknowledged transfer batches.</summary>
    public void Tick(long nowMs)
    {
        if (Self.IsNode && nowMs - _lastHeartbeatMs >= Config.HeartbeatIntervalMs)
        {
            _lastHeartbeatMs = nowMs;
            _out.Send(NodeId.Manager, new Heartbeat(Self, HintFloor(nowMs)));
        }
        GoSloppy(nowMs);
        ExpireOperations(nowMs);
        ResendTransfers(nowMs);
        HandOffHints(nowMs);
        StartAntiEntropy(nowMs);
        TickPurge(nowMs);
    }

    private bool IsReplica(ulong hash) =>
        Current.IsReplica(Self, hash, Config.ReplicationFactor)
        || (Pending is not null && Pending.IsReplica(Self, hash, Config.ReplicationFactor));

    private long NextOpId() => _nextOpId++;

    // ---- replica side ----------------------------------------------------------------------

    private void OnReplicaWrite(ReplicaWrite m)
    {
        var hash = KeyHash.Of(m.Key);
        if (Current.NodeCount == 0)
        {
            // Restarting: until the ring arrives this node cannot tell; the sender tries again.
            if (m.OpId > 0)
                _out.Send(m.From, new ReplicaWriteAck(m.OpId, Self, false, $"{Self} is not ready (no ring yet)"));
            return;
        }
        if (!IsReplica(hash))
        {
            if (m.OpId > 0)
                _out.Send(m.From, new ReplicaWriteAck(m.OpId, Self, false, $"{Self} is not a replica of this key at epoch {Current.Epoch}"));
            return;
        }
        // A read repair from a node outside the rings (removed while cut off, with stale data) is
        // ignored; a write no newer than a tombstone purged less than the grace ago is superseded.
        var stale = (m.OpId == 0 && !Current.Contains(m.From) && Pending?.Contains(m.From) != true)
                    || WasPurged(hash, m.Key, m.Value.Version);
        _clock.Observe(m.Value.Version.Timestamp);
        try
        {
            if (!stale)
                _store.Put(hash, m.Key, m.Value);
        }
        catch (StorageException e)
        {
            if (m.OpId > 0)
                _out.Send(m.From, new ReplicaWriteAck(m.OpId, Self, false, $"{Self} could not store the write: {e.Message}"));
            return;
        }
        if (m.OpId > 0)
            _out.Send(m.From, new ReplicaWriteAck(m.OpId, Self, true, null));
    }

    private void OnReplicaRead(ReplicaRead m)
    {
        var hash = KeyHash.Of(m.Key);
        if (!Current.IsReplica(Self, hash, Config.ReplicationFactor))
        {
            _out.Send(m.From, new ReplicaReadReply(m.OpId, Self, false, null, $"{Self} is not a replica of this key at epoch {Current.Epoch}"));
            return;
        }
        if (m.VersionOnly)
        {
            var held = _store.VersionOf(hash, m.Key) is { } version ? new VersionedValue(version, null) : (VersionedValue?)null;
            _out.Send(m.From, new ReplicaReadReply(m.OpId, Self, true, held, null, VersionOnly: true));
            return;
        }
        _out.Send(m.From, new ReplicaReadReply(m.OpId, Self, true, _store.Get(hash, m.Key), null));
    }
}
