using System.Buffers.Binary;
using System.IO.Hashing;
using GTStore.Core.Messages;

namespace GTStore.Core;

/// <summary>The pure parts of anti-entropy: slicing a range and summarising entries.</summary>
public static class AntiEntropy
{
    /// <summary>Slices (leaves) per range summary.</summary>
    public const int Leaves = 64;

    /// <summary>Which slice of <paramref name="range"/> a hash falls in.</summary>
    public static int SliceOf(HashRange range, ulong hash)
    {
        var offset = (UInt128)unchecked(hash - range.Start - 1);
        return (int)(offset * Leaves / range.Width);
    }

    /// <summary>Order-independent digest of one entry: its key and version (values with equal versions are equal).</summary>
    public static ulong EntryDigest(StoredEntry e)
    {
        Span<byte> version = stackalloc byte[12];
        BinaryPrimitives.WriteInt64LittleEndian(version, e.Value.Version.Timestamp);
        BinaryPrimitives.WriteInt32LittleEndian(version[8..], e.Value.Version.Node);
        var hasher = new XxHash3(KeyHash.Seed);
        hasher.Append(e.Key);
        hasher.Append(version);
        return hasher.GetCurrentHashAsUInt64();
    }
}

// Anti-entropy (Dynamo section 4.7): replicas compare hash summaries of a range in the
// background and exchange only the slices that differ, so they converge without reads.
public sealed partial class NodeMachine
{
    private long _nextSyncMs;

    /// <summary>
    /// Entries per second a node summarises for the rounds it starts, at most: a round over a large
    /// range waits longer before the next, so anti-entropy stays background work whatever the data
    /// size (a full pass over 300k keys takes about 30 s).
    /// </summary>
    public const int SyncEntriesPerSecond = 10_000;
    private int _syncCursor;

    /// <summary>Entries this node took from another replica through anti-entropy.</summary>
    public long AntiEntropyRepairs { get; private set; }

    /// <summary>Milliseconds between two summaries sent; one range each time, so the work is throttled.</summary>
    private long SyncIntervalMs => Math.Max(Config.RequestTimeoutMs / 2, 100);

    private void StartAntiEntropy(long nowMs)
    {
        if (Pending is not null || !Current.Contains(Self) || nowMs < _nextSyncMs)
            return;
        _nextSyncMs = nowMs + SyncIntervalMs;
        var mine = Current.Partitions(Config.ReplicationFactor).Where(p => Array.IndexOf(p.Replicas, Self) >= 0).ToList();
        if (mine.Count == 0)
            return;
        var (range, replicas) = mine[_syncCursor++ % mine.Count];
        var peers = replicas.Where(r => r != Self && !IsSuspect(r, nowMs)).ToList();
        if (peers.Count == 0)
            return;
        var peer = peers[(_syncCursor / mine.Count) % peers.Count];
        _out.Send(peer, new SyncDigest(Self, range, Summarise(range, out var entries)));
        _nextSyncMs = nowMs + Math.Max(SyncIntervalMs, entries * 1000L / SyncEntriesPerSecond);
    }

    private ulong[] Summarise(HashRange range) => Summarise(range, out _);

    private ulong[] Summarise(HashRange range, out long entries)
    {
        var leaves = new ulong[AntiEntropy.Leaves];
        entries = 0;
        foreach (var e in ScanAll(range))
        {
            leaves[AntiEntropy.SliceOf(range, e.Hash)] ^= AntiEntropy.EntryDigest(e);
            entries++;
        }
        return leaves;
    }

    private IEnumerable<StoredEntry> ScanAll(HashRange range)
    {
        ScanCursor? cursor = null;
        var batch = new List<StoredEntry>();
        do
        {
            batch.Clear();
            cursor = _store.Scan(range, cursor, Limits.TransferBatchEntriesMax, Limits.TransferBatchBytesMax, batch);
            foreach (var e in batch)
                yield return e;
        }
        while (cursor is not null);
    }

    /// <summary>Our entries of the given slices, bounded by one transfer batch; the rest waits for a later round.</summary>
    private List<StoredEntry> EntriesOf(HashRange range, IReadOnlyCollection<int> slices)
    {
        var wanted = slices.ToHashSet();
        var entries = new List<StoredEntry>();
        var bytes = 0;
        foreach (var e in ScanAll(range))
        {
            if (!wanted.Contains(AntiEntropy.SliceOf(range, e.Hash)))
                continue;
            if (entries.Count >= Limits.TransferBatchEntriesMax || bytes >= Limits.TransferBatchBytesMax)
                break;
            entries.Add(e);
            bytes += e.Key.Length + (e.Value.Value?.Length ?? 0);
        }
        return entries;
    }

    /// <summary>
    /// Both this node and <paramref name="peer"/> replicate the range under this node's ring: a
    /// node on an older ring (cut off, or removed meanwhile) must not push copies it no longer
    /// owns, which could be older than a tombstone purged since.
    /// </summary>
    private bool BothReplicate(HashRange range, NodeId peer) =>
        Pending is null && Current.Partitions(Config.ReplicationFactor)
            .Any(p => p.Range == range && Array.IndexOf(p.Replicas, Self) >= 0 && Array.IndexOf(p.Replicas, peer) >= 0);

    private void OnSyncDigest(SyncDigest m)
    {
        if (m.Leaves.Count != AntiEntropy.Leaves || !BothReplicate(m.Range, m.From))
            return; // Rings differ for now; a later round will match.
        var mine = Summarise(m.Range);
        var differing = Enumerable.Range(0, AntiEntropy.Leaves).Where(i => mine[i] != m.Leaves[i]).ToList();
        if (differing.Count > 0)
            _out.Send(m.From, new SyncEntries(Self, m.Range, differing, EntriesOf(m.Range, differing), Final: false));
    }

    private void OnSyncEntries(SyncEntries m)
    {
        if (!BothReplicate(m.Range, m.From))
            return;
        // Answer with ours before merging theirs, so the peer receives what it lacks.
        if (!m.Final)
            _out.Send(m.From, new SyncEntries(Self, m.Range, m.Slices, EntriesOf(m.Range, m.Slices), Final: true));
        foreach (var e in m.Entries)
        {
            if (!m.Range.Contains(e.Hash) || KeyHash.Of(e.Key) != e.Hash)
                continue;
            _clock.Observe(e.Value.Version.Timestamp);
            if (TryStore(e.Hash, e.Key, e.Value))
                AntiEntropyRepairs++;
        }
    }
}
