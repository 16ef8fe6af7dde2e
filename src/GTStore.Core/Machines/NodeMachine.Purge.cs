using GTStore.Core.Messages;

namespace GTStore.Core;

// Tombstone purge (DESIGN.md "Versions, deletes, limits": "tombstones are purged only after every
// replica has them"; docs/ARCHITECTURE.md "Tombstones"). The first replica of a range proposes
// tombstones older than the grace and than the manager's hint floor; the other replicas confirm
// the ones they hold at exactly that version; only when all confirm does each remove its copy,
// and only if it still holds exactly that version (compare-and-delete).
public sealed partial class NodeMachine
{
    private sealed class PurgeRound(long epoch, HashRange range, List<StoredEntry> entries, List<NodeId> peers, long sentAtMs)
    {
        public long Epoch { get; } = epoch;
        public HashRange Range { get; } = range;
        public List<StoredEntry> Entries { get; } = entries;
        public List<NodeId> Peers { get; } = peers;
        public HashSet<NodeId> Waiting { get; } = [.. peers];
        /// <summary>Held[i]: every replica that answered so far holds entry i exactly.</summary>
        public bool[] Held { get; } = Enumerable.Repeat(true, entries.Count).ToArray();
        public long SentAtMs { get; } = sentAtMs;
    }

    private readonly Dictionary<long, PurgeRound> _purges = [];
    // Keys purged less than the grace ago, with the purged version: a late message carrying that
    // version or an older one (a delayed anti-entropy batch, a repair, a transfer) is ignored.
    private readonly Dictionary<(ulong Hash, string Key), Version> _purged = [];
    private readonly Queue<(ulong Hash, string Key, Version Version, long AtMs)> _purgedOrder = new();
    private (long Epoch, long Floor, long AtMs) _purgeFloor;
    private long _lastPurgeMs;
    private int _purgeCursor;

    /// <summary>Tombstones this node removed since it started.</summary>
    public long TombstonesPurged { get; private set; }

    /// <summary>Milliseconds between two full scans of the hints for <see cref="HintFloor"/>.</summary>
    private const long HintFloorRescanMs = 10_000;

    /// <summary>
    /// No hint held has a version below this: lowered by every hint taken, raised (by a full scan)
    /// only every <see cref="HintFloorRescanMs"/>, so between scans it may be lower than the true
    /// floor, which only delays purging.
    /// </summary>
    private long _hintFloorLow = long.MaxValue;
    private long _hintFloorScannedMs;

    /// <summary>
    /// What this node reports in its heartbeat: a lower bound on the version timestamps of its
    /// hints, or now when it holds none (0 while a handover streams). Heartbeats are frequent and
    /// hints up to <see cref="HintsMax"/>, so the hints are scanned only every
    /// <see cref="HintFloorRescanMs"/>.
    /// </summary>
    private long HintFloor(long nowMs)
    {
        if (_handovers.Count > 0)
            return 0; // A handover can carry any version: nothing may be purged until it is done.
        if (_hintCount == 0)
        {
            _hintFloorLow = long.MaxValue;
        }
        else if (nowMs - _hintFloorScannedMs >= HintFloorRescanMs)
        {
            _hintFloorScannedMs = nowMs;
            _hintFloorLow = long.MaxValue;
            foreach (var byKey in _hints.Values)
            {
                foreach (var (_, value) in byKey.Values)
                    _hintFloorLow = Math.Min(_hintFloorLow, value.Version.Timestamp);
            }
        }
        return Math.Min(_hintFloorLow, HybridClock.AtPhysicalMs(nowMs));
    }

    private void OnPurgeFloor(long nowMs, PurgeFloor m) => _purgeFloor = (m.Epoch, m.Floor, nowMs);

    /// <summary>The manager's floor is fresh, for this ring, and allows purging at all.</summary>
    private bool PurgeAllowed(long nowMs) =>
        Pending is null && _purgeFloor.Floor > 0 && _purgeFloor.Epoch == Current.Epoch
        && nowMs - _purgeFloor.AtMs <= Config.FailureTimeoutMs;

    private bool IsPurgeCandidate(long nowMs, VersionedValue v) =>
        v.IsTombstone
        && HybridClock.PhysicalMs(v.Version.Timestamp) < nowMs - Config.TombstoneGraceMs
        && v.Version.Timestamp < _purgeFloor.Floor;

    /// <summary>True when <paramref name="version"/> of the key is no newer than a tombstone purged less than the grace ago.</summary>
    private bool WasPurged(ulong hash, byte[] key, Version version) =>
        _purged.Count > 0 && _purged.TryGetValue((hash, HintKey(key)), out var purged) && version <= purged;

    private void TickPurge(long nowMs)
    {
        while (_purgedOrder.TryPeek(out var p) && nowMs - p.AtMs > Config.TombstoneGraceMs)
        {
            _purgedOrder.Dequeue();
            if (_purged.TryGetValue((p.Hash, p.Key), out var v) && v == p.Version)
                _purged.Remove((p.Hash, p.Key));
        }
        foreach (var (opId, _) in _purges.Where(kv => nowMs - kv.Value.SentAtMs > Config.RequestTimeoutMs).ToList())
            _purges.Remove(opId);
        StartPurgeRound(nowMs);
    }

    /// <summary>One range per interval (round-robin over the ranges this node is first replica of), one bounded batch.</summary>
    private void StartPurgeRound(long nowMs)
    {
        if (!Current.Contains(Self) || nowMs - _lastPurgeMs < SyncIntervalMs)
            return;
        _lastPurgeMs = nowMs;
        if (!PurgeAllowed(nowMs))
            return;
        var room = Limits.PurgedKeysRememberedMax - _purged.Count;
        var mine = Current.Partitions(Config.ReplicationFactor).Where(p => p.Replicas[0] == Self).ToList();
        if (mine.Count == 0 || room <= 0)
            return;
        var (range, replicas) = mine[_purgeCursor++ % mine.Count];
        if (_purges.Values.Any(p => p.Range == range))
            return;
        var entries = new List<StoredEntry>();
        var bytes = 0;
        foreach (var e in TombstoneCandidates(range))
        {
            if (entries.Count >= Math.Min(Limits.PurgeBatchEntriesMax, room) || bytes >= Limits.TransferBatchBytesMax)
                break;
            if (!IsPurgeCandidate(nowMs, e.Value))
                continue;
            entries.Add(e);
            bytes += e.Key.Length;
        }
        if (entries.Count == 0)
            return;
        var peers = replicas.Where(r => r != Self).Distinct().ToList();
        if (peers.Count == 0)
        {
            RemovePurged(nowMs, entries); // N = 1: this node is every replica.
            return;
        }
        var opId = NextOpId();
        _purges[opId] = new PurgeRound(Current.Epoch, range, entries, peers, nowMs);
        foreach (var peer in peers)
            _out.Send(peer, new PurgeProposal(opId, Self, Current.Epoch, range, entries));
    }

    /// <summary>
    /// The entries a purge round looks through for candidates: with an engine that counts
    /// tombstones per bucket, only the buckets of the range that hold one (nothing at all when the
    /// engine holds none, the common case under a write load); else the whole range.
    /// </summary>
    private IEnumerable<StoredEntry> TombstoneCandidates(HashRange range)
    {
        if (_store.TombstoneCount is not { } total)
            return ScanAll(range);
        return total == 0 ? [] : InBucketsWithTombstones(range);
    }

    private IEnumerable<StoredEntry> InBucketsWithTombstones(HashRange range)
    {
        foreach (var (bucket, part, _) in AntiEntropy.BucketParts(range))
        {
            if (_store.BucketTombstones(bucket) is not > 0)
                continue;
            foreach (var e in ScanAll(part))
                yield return e;
        }
    }

    /// <summary>The first replica of the range under this ring, if this node replicates it too.</summary>
    private bool IsProposerOf(HashRange range, NodeId node, long epoch) =>
        Pending is null && epoch == Current.Epoch
        && Current.Partitions(Config.ReplicationFactor).Any(p => p.Range == range && p.Replicas[0] == node && Array.IndexOf(p.Replicas, Self) >= 0);

    private void OnPurgeProposal(PurgeProposal m)
    {
        var held = new List<int>();
        if (IsProposerOf(m.Range, m.From, m.Epoch))
        {
            for (var i = 0; i < m.Entries.Count; i++)
            {
                var e = m.Entries[i];
                if (m.Range.Contains(e.Hash) && KeyHash.Of(e.Key) == e.Hash
                    && _store.Get(e.Hash, e.Key) is { IsTombstone: true } mine && mine.Version == e.Value.Version)
                    held.Add(i);
            }
        }
        _out.Send(m.From, new PurgeConfirm(m.OpId, Self, held));
    }

    private void OnPurgeConfirm(long nowMs, PurgeConfirm m)
    {
        if (!_purges.TryGetValue(m.OpId, out var round) || !round.Waiting.Remove(m.From))
            return;
        var confirmed = new bool[round.Entries.Count];
        foreach (var i in m.Held)
        {
            if (i >= 0 && i < confirmed.Length)
                confirmed[i] = true;
        }
        for (var i = 0; i < confirmed.Length; i++)
            round.Held[i] &= confirmed[i];
        if (round.Waiting.Count > 0)
            return;
        _purges.Remove(m.OpId);
        // Conditions may have changed while the replicas answered (a ring change, a node down).
        if (round.Epoch != Current.Epoch || !PurgeAllowed(nowMs))
            return;
        var entries = round.Entries.Where((e, i) => round.Held[i] && IsPurgeCandidate(nowMs, e.Value)).ToList();
        if (entries.Count == 0)
            return;
        foreach (var peer in round.Peers)
            _out.Send(peer, new PurgeCommit(Self, round.Epoch, round.Range, entries));
        RemovePurged(nowMs, entries);
    }

    private void OnPurgeCommit(long nowMs, PurgeCommit m)
    {
        // A commit that comes after a ring change is ignored: the leftover tombstone is harmless
        // and a later round purges it.
        if (!IsProposerOf(m.Range, m.From, m.Epoch))
            return;
        RemovePurged(nowMs, m.Entries.Where(e => m.Range.Contains(e.Hash) && KeyHash.Of(e.Key) == e.Hash && e.Value.IsTombstone).ToList());
    }

    /// <summary>Compare-and-delete of each tombstone, remembering the purged ones for the grace.</summary>
    private void RemovePurged(long nowMs, List<StoredEntry> entries)
    {
        foreach (var e in entries)
        {
            if (_purged.Count >= Limits.PurgedKeysRememberedMax)
                return; // The tombstones left are purged by a later round.
            try
            {
                if (!_store.RemoveIfVersion(e.Hash, e.Key, e.Value.Version))
                    continue;
            }
            catch (StorageException)
            {
                return; // The disk refuses; the tombstones stay, which is safe.
            }
            TombstonesPurged++;
            var k = (e.Hash, HintKey(e.Key));
            _purged[k] = _purged.TryGetValue(k, out var before) ? Version.Max(before, e.Value.Version) : e.Value.Version;
            _purgedOrder.Enqueue((e.Hash, k.Item2, _purged[k], nowMs));
        }
    }
}
