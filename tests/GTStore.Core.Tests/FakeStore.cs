namespace GTStore.Core.Tests;

/// <summary>
/// A minimal <see cref="IStorageEngine"/> for state-machine tests (Core.Tests references only Core;
/// the real engines are tested by the storage contract suite). Merges by version like an engine.
/// </summary>
internal sealed class FakeStore : IStorageEngine
{
    private readonly Dictionary<(ulong Hash, string Key), VersionedValue> _entries = [];

    public string Name => "fake";

    /// <summary>
    /// Whether the store answers <see cref="BucketDigest"/> and <see cref="BucketTombstones"/> (worked
    /// out from the entries on each call), as the real engines do; otherwise readers scan.
    /// </summary>
    public bool KeepsBucketSummaries { get; init; }

    /// <summary>Every entry a scan returned so far, by hash and key.</summary>
    public HashSet<(ulong Hash, string Key)> Scanned { get; } = [];

    public ulong? BucketDigest(int bucket) => KeepsBucketSummaries ? Buckets().GetValueOrDefault(bucket).Digest : null;

    public int? BucketTombstones(int bucket) => KeepsBucketSummaries ? Buckets().GetValueOrDefault(bucket).Tombstones : null;

    public long? TombstoneCount => KeepsBucketSummaries ? _entries.Values.Count(v => v.IsTombstone) : null;

    private Dictionary<int, (ulong Digest, int Tombstones)>? _buckets;

    /// <summary>The bucket summaries, worked out from the entries once after each change.</summary>
    private Dictionary<int, (ulong Digest, int Tombstones)> Buckets()
    {
        if (_buckets is not null)
            return _buckets;
        _buckets = [];
        foreach (var ((hash, key), value) in _entries)
        {
            var (digest, tombstones) = _buckets.GetValueOrDefault(AntiEntropy.BucketOf(hash));
            _buckets[AntiEntropy.BucketOf(hash)] = (digest ^ AntiEntropy.EntryDigest(Convert.FromHexString(key), value.Version), tombstones + (value.IsTombstone ? 1 : 0));
        }
        return _buckets;
    }

    public long Count => _entries.Count;

    public VersionedValue? Get(ulong hash, ReadOnlySpan<byte> key) =>
        _entries.TryGetValue((hash, Convert.ToHexString(key)), out var v) ? v : null;

    public bool Put(ulong hash, ReadOnlySpan<byte> key, VersionedValue value)
    {
        var k = (hash, Convert.ToHexString(key));
        if (_entries.TryGetValue(k, out var held) && held.Version >= value.Version)
            return false;
        _entries[k] = value;
        _buckets = null;
        return true;
    }

    public bool RemoveIfVersion(ulong hash, ReadOnlySpan<byte> key, Version version)
    {
        var k = (hash, Convert.ToHexString(key));
        _buckets = null;
        return _entries.TryGetValue(k, out var held) && held.Version == version && _entries.Remove(k);
    }

    public ScanCursor? Scan(HashRange range, ScanCursor? after, int maxEntries, int maxBytes, List<StoredEntry> into)
    {
        if (after is not null)
            throw new NotSupportedException("the fake store scans in one batch");
        foreach (var ((hash, key), value) in _entries.Where(e => range.Contains(e.Key.Hash)))
        {
            into.Add(new StoredEntry(hash, Convert.FromHexString(key), value));
            Scanned.Add((hash, key));
        }
        return null;
    }

    public long DropRange(HashRange range)
    {
        var doomed = _entries.Keys.Where(k => range.Contains(k.Hash)).ToList();
        foreach (var k in doomed)
            _entries.Remove(k);
        _buckets = null;
        return doomed.Count;
    }

    public void Flush()
    {
    }

    public void Dispose()
    {
    }
}
