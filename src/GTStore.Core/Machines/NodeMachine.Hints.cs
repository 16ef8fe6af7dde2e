using GTStore.Core.Messages;

namespace GTStore.Core;

// Sloppy quorum and hinted handoff (DESIGN.md "Request path"; Dynamo section 4.6): a stand-in
// keeps writes for an unreachable replica as hints and hands them back when it answers again.
public sealed partial class NodeMachine
{
    /// <summary>Most hints one node holds; beyond it, stand-in writes are refused (the coordinator tries another).</summary>
    public const int HintsMax = 1_000_000;

    /// <summary>Most hints handed back per replica per round.</summary>
    public const int HandoffBatchMax = 256;

    private readonly Dictionary<NodeId, Dictionary<string, (byte[] Key, VersionedValue Value)>> _hints = [];
    private readonly Dictionary<long, (NodeId Owner, string Key, Version Version, long SentAtMs)> _handoffs = [];
    private readonly Dictionary<NodeId, long> _suspectUntilMs = [];
    private long _lastHandoffMs;
    private long _hintCount;

    /// <summary>Writes held for unreachable replicas.</summary>
    public long HintCount => _hintCount;

    private long SloppyAfterMs => Math.Max(1, Config.RequestTimeoutMs / 4);

    /// <summary>A peer that did not answer is avoided for a while; hearing from it clears that.</summary>
    private void Suspect(NodeId node, long nowMs)
    {
        if (node != Self && node.IsNode)
            _suspectUntilMs[node] = nowMs + Config.FailureTimeoutMs;
    }

    private bool IsSuspect(NodeId node, long nowMs) =>
        _suspectUntilMs.TryGetValue(node, out var until) && until > nowMs;

    private void HeardFrom(NodeId node) => _suspectUntilMs.Remove(node);

    /// <summary>
    /// The next node clockwise after the key's preference list that is not already used by this
    /// request, preferring nodes not under suspicion; None when the ring has no one left.
    /// </summary>
    private NodeId NextStandIn(ulong hash, ICollection<NodeId> used, long nowMs)
    {
        var walk = Current.PreferenceList(hash, Current.NodeCount);
        NodeId fallback = NodeId.None;
        foreach (var node in walk.Skip(Config.ReplicationFactor))
        {
            if (used.Contains(node))
                continue;
            if (!IsSuspect(node, nowMs))
                return node;
            if (!fallback.IsNode)
                fallback = node;
        }
        return fallback;
    }

    private static string HintKey(byte[] key) => Convert.ToBase64String(key);

    private bool StoreHint(NodeId owner, byte[] key, VersionedValue value)
    {
        if (!_hints.TryGetValue(owner, out var byKey))
            _hints[owner] = byKey = [];
        var k = HintKey(key);
        if (byKey.TryGetValue(k, out var held))
        {
            if (value.Version > held.Value.Version)
                byKey[k] = (key, value);
            return true;
        }
        if (_hintCount >= HintsMax)
            return false;
        byKey[k] = (key, value);
        _hintCount++;
        _hintFloorLow = Math.Min(_hintFloorLow, value.Version.Timestamp);
        return true;
    }

    /// <summary>Once no hint for the key is left, the stand-in's durable copy goes too (unless it is a replica now).</summary>
    private void DropStrayCopy(byte[] key)
    {
        var hash = KeyHash.Of(key);
        if (LatestHint(key) is not null || IsReplica(hash))
            return;
        try
        {
            // Every key of this hash is outside our ranges, so dropping the one-hash range is exact.
            _store.DropRange(new HashRange(unchecked(hash - 1), hash));
        }
        catch (StorageException)
        {
            // Left for the next committed ring to drop.
        }
    }

    /// <summary>The latest version this node holds for a key as a stand-in, across all owners.</summary>
    private VersionedValue? LatestHint(byte[] key)
    {
        VersionedValue? best = null;
        var k = HintKey(key);
        foreach (var byKey in _hints.Values)
        {
            if (byKey.TryGetValue(k, out var h) && (best is null || h.Value.Version > best.Value.Version))
                best = h.Value;
        }
        return best;
    }

    private void OnHintedWrite(ReplicaWrite m)
    {
        _clock.Observe(m.Value.Version.Timestamp);
        var ok = TakeHint(m.HintFor, m.Key, m.Value);
        if (m.OpId > 0)
            _out.Send(m.From, new ReplicaWriteAck(m.OpId, Self, ok, ok ? null : $"{Self} holds {HintsMax} hints already (limit)"));
    }

    /// <summary>
    /// Takes a write as a stand-in: indexed in memory for handoff and written to the store as
    /// well, so it survives a crash (after a restart, entries outside this node's ranges become
    /// hints again; see DropUnownedRanges). The host acknowledges only once the store is durable.
    /// </summary>
    private bool TakeHint(NodeId owner, byte[] key, VersionedValue value)
    {
        _ = TryStore(KeyHash.Of(key), key, value);
        return StoreHint(owner, key, value);
    }

    /// <summary>What a stand-in answers for a key: the latest of its own copy (if a replica) and its hints.</summary>
    private VersionedValue? StandInAnswer(ulong hash, byte[] key)
    {
        VersionedValue? own = IsReplica(hash) ? _store.Get(hash, key) : null;
        var hint = LatestHint(key);
        return own is null ? hint : hint is null ? own : VersionedValue.Latest(own.Value, hint.Value);
    }

    private void OnHintedRead(ReplicaRead m) =>
        _out.Send(m.From, new ReplicaReadReply(m.OpId, Self, true, StandInAnswer(KeyHash.Of(m.Key), m.Key), null));

    /// <summary>Hands hints back to their replicas, a bounded batch per replica per round.</summary>
    private void HandOffHints(long nowMs)
    {
        // A node that has left hands its hints back at once: they are the only copy it keeps.
        if (_hintCount == 0 || (!HasLeft && nowMs - _lastHandoffMs < Config.RequestTimeoutMs / 2))
            return;
        _lastHandoffMs = nowMs;
        foreach (var (opId, h) in _handoffs.Where(kv => nowMs - kv.Value.SentAtMs > Config.RequestTimeoutMs).ToList())
            _handoffs.Remove(opId);
        RehomeOrphanedHints();
        var inFlight = _handoffs.Values.Select(h => (h.Owner, h.Key)).ToHashSet();
        foreach (var (owner, byKey) in _hints)
        {
            if (IsSuspect(owner, nowMs) && !HasLeft)
                continue;
            // While a change is pending, a hint goes only to an owner that keeps the key in the new
            // ring: one losing it may already have streamed the range, and would drop it at the commit.
            foreach (var (k, (key, value)) in byKey.Where(kv => !inFlight.Contains((owner, kv.Key)) && KeepsAfterChange(owner, kv.Value.Key)).Take(HandoffBatchMax))
            {
                var opId = NextOpId();
                _handoffs[opId] = (owner, k, value.Version, nowMs);
                _out.Send(owner, new ReplicaWrite(opId, Self, key, value));
            }
        }
    }

    private bool KeepsAfterChange(NodeId owner, byte[] key) =>
        Pending is null || HasLeft || Pending.IsReplica(owner, KeyHash.Of(key), Config.ReplicationFactor);

    /// <summary>
    /// Hints for a node that is no longer a member (removed after a permanent failure, or left)
    /// can never be handed to it: they become hints for the key's current replicas, which take
    /// them through the normal acknowledged handoff (this node stores its own share directly).
    /// </summary>
    private void RehomeOrphanedHints()
    {
        if (Pending is not null)
            return; // Membership is changing; wait until the ring is committed.
        foreach (var owner in _hints.Keys.Where(o => !Current.Contains(o)).ToList())
        {
            var byKey = _hints[owner];
            _hints.Remove(owner);
            _hintCount -= byKey.Count;
            foreach (var (key, value) in byKey.Values)
                Rehome(owner, key, value);
        }
    }

    /// <summary>Turns a hint for <paramref name="owner"/> into hints for the key's current replicas (our own share is stored directly).</summary>
    private void Rehome(NodeId owner, byte[] key, VersionedValue value)
    {
        var hash = KeyHash.Of(key);
        foreach (var replica in Current.PreferenceList(hash, Config.ReplicationFactor))
        {
            if (replica == owner)
                continue;
            if (replica == Self)
                TryStore(hash, key, value);
            else
                TakeHint(replica, key, value);
        }
    }

    /// <summary>An answer to a handoff; false when the op was not a handoff.</summary>
    private bool OnHandoffAck(long nowMs, ReplicaWriteAck m)
    {
        if (!_handoffs.Remove(m.OpId, out var h))
            return false;
        if (!_hints.TryGetValue(h.Owner, out var byKey) || !byKey.TryGetValue(h.Key, out var held))
            return true;
        if (!m.Ok && m.Error is { } error && error.Contains("not a replica", StringComparison.Ordinal))
        {
            // The ring moved on while the owner was away: the write becomes a hint for each of the
            // key's current replicas, handed over with acknowledgements like any other.
            Rehome(h.Owner, held.Key, held.Value);
        }
        else if (!m.Ok)
        {
            Suspect(h.Owner, nowMs);
            return true;
        }
        if (held.Value.Version == h.Version)
        {
            byKey.Remove(h.Key);
            _hintCount--;
            if (byKey.Count == 0)
                _hints.Remove(h.Owner);
            DropStrayCopy(held.Key);
        }
        return true;
    }
}
