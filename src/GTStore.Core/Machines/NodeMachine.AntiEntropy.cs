using System.Buffers.Binary;
using System.IO.Hashing;
using GTStore.Core.Messages;

namespace GTStore.Core;

/// <summary>
/// The pure parts of anti-entropy: slicing a range, summarising entries, and building a summary
/// from the digests an engine keeps per bucket instead of reading every entry.
/// </summary>
public static class AntiEntropy
{
    /// <summary>Slices (leaves) per range summary.</summary>
    public const int Leaves = 64;

    /// <summary>Bits of a hash that name its bucket: the ring is cut into 65,536 buckets.</summary>
    public const int BucketBits = 16;

    public const int Buckets = 1 << BucketBits;

    private const int BucketShift = 64 - BucketBits;
    private const ulong BucketMask = (1UL << BucketShift) - 1;

    /// <summary>Which slice of <paramref name="range"/> a hash falls in.</summary>
    public static int SliceOf(HashRange range, ulong hash)
    {
        var unit = SliceUnitBits(range);
        var offset = (UInt128)unchecked(hash - range.Start - 1) >> unit;
        return (int)(offset * Leaves / (range.Width >> unit));
    }

    /// <summary>The hashes of one slice of <paramref name="range"/>; null when the range is too narrow to give it any.</summary>
    public static HashRange? SliceRange(HashRange range, int slice)
    {
        // Offset o (in units of 2^unit hashes) is in slice s when s * W <= o * Leaves < (s + 1) * W.
        var unit = SliceUnitBits(range);
        var width = range.Width >> unit;
        var low = (((UInt128)(uint)slice * width + Leaves - 1) / Leaves) << unit;
        var high = (((UInt128)(uint)(slice + 1) * width + Leaves - 1) / Leaves) << unit;
        if (low == high)
            return null;
        return new HashRange(unchecked(range.Start + (ulong)low), unchecked(range.Start + (ulong)high));
    }

    /// <summary>
    /// What slices are cut in: whole buckets when <paramref name="range"/> starts and ends on bucket
    /// boundaries, as every range does once tokens end slot arcs (<see cref="TokenAllocator"/>), so
    /// that no bucket straddles two slices and a summary takes every bucket from the engine's
    /// digests without reading an entry; single hashes otherwise.
    /// </summary>
    private static int SliceUnitBits(HashRange range) =>
        (unchecked(range.Start + 1) & BucketMask) == 0 && (range.Width & BucketMask) == 0 ? BucketShift : 0;

    /// <summary>The bucket a hash falls in: its top <see cref="BucketBits"/> bits.</summary>
    public static int BucketOf(ulong hash) => (int)(hash >> BucketShift);

    /// <summary>
    /// The buckets <paramref name="range"/> covers in ring order, each with the part of it inside
    /// the range and whether that part is the whole bucket. A full ring that starts inside a
    /// bucket visits that bucket twice, once at each end.
    /// </summary>
    public static IEnumerable<(int Bucket, HashRange Part, bool Whole)> BucketParts(HashRange range)
    {
        var first = unchecked(range.Start + 1);
        var visits = (int)(((UInt128)(first & BucketMask) + range.Width - 1) >> BucketShift) + 1;
        for (var i = 0; i < visits; i++)
        {
            var bucket = (int)((ulong)(BucketOf(first) + i) & (Buckets - 1));
            var bucketStart = (ulong)bucket << BucketShift;
            var bucketEnd = bucketStart | BucketMask;
            var before = i == 0 ? range.Start : unchecked(bucketStart - 1);
            var last = i == visits - 1 ? range.End : bucketEnd;
            yield return (bucket, new HashRange(before, last), before == unchecked(bucketStart - 1) && last == bucketEnd);
        }
    }

    /// <summary>Order-independent digest of one entry: its key and version (values with equal versions are equal).</summary>
    public static ulong EntryDigest(StoredEntry e) => EntryDigest(e.Key, e.Value.Version);

    /// <inheritdoc cref="EntryDigest(StoredEntry)"/>
    public static ulong EntryDigest(ReadOnlySpan<byte> key, Version version)
    {
        const int VersionBytes = 12;
        Span<byte> bytes = key.Length <= 256 ? stackalloc byte[key.Length + VersionBytes] : new byte[key.Length + VersionBytes];
        key.CopyTo(bytes);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[key.Length..], version.Timestamp);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[(key.Length + 8)..], version.Node);
        return XxHash3.HashToUInt64(bytes, KeyHash.Seed);
    }

    /// <summary>
    /// The summary of <paramref name="range"/>: per slice, the XOR of its entries' digests. A
    /// bucket that lies wholly inside one slice is taken from the engine's bucket digest; only the
    /// buckets cut by the range's ends or by slice boundaries (at most Leaves + 1) are read. An
    /// engine that keeps no digests is read in full. <paramref name="entriesRead"/> says how many
    /// entries were read.
    /// </summary>
    public static ulong[] Summarise(IStorageEngine store, HashRange range, out long entriesRead)
    {
        var leaves = new ulong[Leaves];
        entriesRead = 0;
        if (store.BucketDigest(0) is null)
        {
            entriesRead += AddEntries(store, range, range, leaves);
            return leaves;
        }
        foreach (var (bucket, part, whole) in BucketParts(range))
        {
            var slice = SliceOf(range, part.Start + 1);
            if (whole && slice == SliceOf(range, part.End))
                leaves[slice] ^= store.BucketDigest(bucket)!.Value;
            else
                entriesRead += AddEntries(store, range, part, leaves);
        }
        return leaves;
    }

    private static long AddEntries(IStorageEngine store, HashRange range, HashRange part, ulong[] leaves)
    {
        long n = 0;
        foreach (var e in ScanAll(store, part))
        {
            leaves[SliceOf(range, e.Hash)] ^= EntryDigest(e);
            n++;
        }
        return n;
    }

    /// <summary>Every entry of <paramref name="range"/>, read a transfer batch at a time.</summary>
    public static IEnumerable<StoredEntry> ScanAll(IStorageEngine store, HashRange range)
    {
        ScanCursor? cursor = null;
        var batch = new List<StoredEntry>();
        do
        {
            batch.Clear();
            cursor = store.Scan(range, cursor, Limits.TransferBatchEntriesMax, Limits.TransferBatchBytesMax, batch);
            foreach (var e in batch)
                yield return e;
        }
        while (cursor is not null);
    }
}

// Anti-entropy (Dynamo section 4.7): replicas compare hash summaries of a range in the
// background and exchange only the slices that differ, so they converge without reads.
public sealed partial class NodeMachine
{
    private long _nextSyncMs;

    /// <summary>
    /// Entries per second a node reads to summarise the rounds it starts, at most: a round that had
    /// to read many entries (an engine without bucket digests reads the whole range) waits longer
    /// before the next, so anti-entropy stays background work whatever the data size.
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
        _out.Send(peer, new SyncDigest(Self, range, AntiEntropy.Summarise(_store, range, out var entries)));
        _nextSyncMs = nowMs + Math.Max(SyncIntervalMs, entries * 1000L / SyncEntriesPerSecond);
    }

    private ulong[] Summarise(HashRange range) => AntiEntropy.Summarise(_store, range, out _);

    private IEnumerable<StoredEntry> ScanAll(HashRange range) => AntiEntropy.ScanAll(_store, range);

    /// <summary>Our entries of the given slices, bounded by one transfer batch; the rest waits for a later round.</summary>
    private List<StoredEntry> EntriesOf(HashRange range, IReadOnlyCollection<int> slices)
    {
        var entries = new List<StoredEntry>();
        var bytes = 0;
        foreach (var slice in slices.Distinct().Order())
        {
            if (AntiEntropy.SliceRange(range, slice) is not { } part)
                continue;
            foreach (var e in AntiEntropy.ScanAll(_store, part))
            {
                if (entries.Count >= Limits.TransferBatchEntriesMax || bytes >= Limits.TransferBatchBytesMax)
                    return entries;
                entries.Add(e);
                bytes += e.Key.Length + (e.Value.Value?.Length ?? 0);
            }
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
