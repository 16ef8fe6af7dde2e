using System.Buffers.Binary;
using System.IO.Hashing;
using GTStore.Core.Messages;

namespace GTStore.Core;

/// <summary>
/// The pure parts of anti-entropy: slicing a range, summarising entries, building a summary
/// from the digests an engine keeps per bucket instead of reading every entry, and cutting the
/// slices that differ into their buckets for the second comparison.
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

    /// <summary>
    /// The finer parts of the given slices of <paramref name="range"/>, for a second comparison:
    /// each bucket a slice holds, or the part of one inside it, in ring order. Whole slices only,
    /// at most <see cref="Limits.SyncPartsMax"/> parts; the slices left out wait for a later round.
    /// </summary>
    public static List<HashRange> PartsOf(HashRange range, IEnumerable<int> slices)
    {
        var parts = new List<HashRange>();
        foreach (var slice in slices)
        {
            if (SliceRange(range, slice) is not { } sliceRange)
                continue;
            var these = BucketParts(sliceRange).Select(p => p.Part).ToList();
            if (parts.Count + these.Count > Limits.SyncPartsMax)
                break;
            parts.AddRange(these);
        }
        return parts;
    }

    /// <summary>
    /// The digest of each part: the XOR of its entries' digests. A part that is a whole bucket is
    /// taken from the engine's bucket digest; others (and all, from an engine without digests)
    /// are read. <paramref name="entriesRead"/> says how many entries were read.
    /// </summary>
    public static ulong[] DigestsOf(IStorageEngine store, IReadOnlyList<HashRange> parts, out long entriesRead)
    {
        var digests = new ulong[parts.Count];
        var kept = store.BucketDigest(0) is not null;
        entriesRead = 0;
        for (var i = 0; i < parts.Count; i++)
        {
            if (kept && IsWholeBucket(parts[i]))
            {
                digests[i] = store.BucketDigest(BucketOf(parts[i].End))!.Value;
                continue;
            }
            foreach (var e in ScanAll(store, parts[i]))
            {
                digests[i] ^= EntryDigest(e);
                entriesRead++;
            }
        }
        return digests;
    }

    /// <summary>Whether <paramref name="part"/> is exactly one bucket.</summary>
    public static bool IsWholeBucket(HashRange part) =>
        !part.IsFullRing && (unchecked(part.Start + 1) & BucketMask) == 0 && part.Width == (UInt128)BucketMask + 1;

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
// background, then the finer parts of the slices that differ, and exchange only the parts that
// still differ, so they converge without reads. A round: SyncDigest (64 slices) -> SyncParts
// (buckets of the differing slices) -> SyncEntries (ours) -> SyncEntries (theirs, Final).
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

    /// <summary>Our entries of the given parts, bounded by one transfer batch; the rest waits for a later round.</summary>
    private List<StoredEntry> EntriesOf(IReadOnlyList<HashRange> parts)
    {
        var entries = new List<StoredEntry>();
        var bytes = 0;
        foreach (var part in parts)
        {
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

    /// <summary>Parts a peer named: few enough, and each inside the range compared.</summary>
    private static bool ValidParts(HashRange range, IReadOnlyList<HashRange> parts) =>
        parts.Count <= Limits.SyncPartsMax && parts.All(p => p.IsCoveredBy([range]));

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
        var differing = Enumerable.Range(0, AntiEntropy.Leaves).Where(i => mine[i] != m.Leaves[i]);
        var parts = AntiEntropy.PartsOf(m.Range, differing);
        if (parts.Count > 0)
            _out.Send(m.From, new SyncParts(Self, m.Range, parts, AntiEntropy.DigestsOf(_store, parts, out _)));
    }

    /// <summary>
    /// The peer's digests of the finer parts of the slices that differ: this node (which started
    /// the round) sends its entries of the parts that still differ, and charges what it read and
    /// sent to the rounds' budget.
    /// </summary>
    private void OnSyncParts(long nowMs, SyncParts m)
    {
        if (m.Parts.Count != m.Digests.Count || !ValidParts(m.Range, m.Parts) || !BothReplicate(m.Range, m.From))
            return;
        var mine = AntiEntropy.DigestsOf(_store, m.Parts, out var read);
        var differing = m.Parts.Where((_, i) => mine[i] != m.Digests[i]).ToList();
        if (differing.Count == 0)
            return;
        var entries = EntriesOf(differing);
        _out.Send(m.From, new SyncEntries(Self, m.Range, differing, entries, Final: false));
        _nextSyncMs = Math.Max(_nextSyncMs, nowMs + (read + entries.Count) * 1000L / SyncEntriesPerSecond);
    }

    private void OnSyncEntries(SyncEntries m)
    {
        if (!ValidParts(m.Range, m.Parts) || !BothReplicate(m.Range, m.From))
            return;
        // Answer with ours before merging theirs, so the peer receives what it lacks.
        if (!m.Final)
            _out.Send(m.From, new SyncEntries(Self, m.Range, m.Parts, EntriesOf(m.Parts), Final: true));
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
