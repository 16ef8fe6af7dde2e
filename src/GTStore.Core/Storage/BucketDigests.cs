namespace GTStore.Core;

/// <summary>
/// What an engine keeps per bucket for <see cref="IStorageEngine.BucketDigest"/> and
/// <see cref="IStorageEngine.BucketTombstones"/>: the XOR of the digests of the entries held there
/// (512 KiB), and how many of them are tombstones (256 KiB). An entry enters and leaves a bucket by
/// the same XOR, so replacing a version is two toggles. Not thread-safe: the engine calls it under
/// its lock.
/// </summary>
public sealed class BucketDigests
{
    private readonly ulong[] _digests = new ulong[AntiEntropy.Buckets];
    private readonly int[] _tombstones = new int[AntiEntropy.Buckets];

    public ulong this[int bucket] => _digests[bucket];

    /// <summary>Tombstones held in <paramref name="bucket"/>.</summary>
    public int TombstonesIn(int bucket) => _tombstones[bucket];

    /// <summary>Tombstones held in all buckets.</summary>
    public long Tombstones { get; private set; }

    public void Clear()
    {
        Array.Clear(_digests);
        Array.Clear(_tombstones);
        Tombstones = 0;
    }

    /// <summary>The entry (a tombstone or not) is now held.</summary>
    public void Add(ulong hash, ReadOnlySpan<byte> key, Version version, bool tombstone) => Change(hash, key, version, tombstone ? 1 : 0);

    /// <summary>The entry (a tombstone or not) is no longer held.</summary>
    public void Remove(ulong hash, ReadOnlySpan<byte> key, Version version, bool tombstone) => Change(hash, key, version, tombstone ? -1 : 0);

    /// <summary>The key was held at <paramref name="held"/> (null: not held) and now is at <paramref name="version"/>.</summary>
    public void Replace(ulong hash, ReadOnlySpan<byte> key, (Version Version, bool Tombstone)? held, Version version, bool tombstone)
    {
        if (held is { } old)
            Remove(hash, key, old.Version, old.Tombstone);
        Add(hash, key, version, tombstone);
    }

    private void Change(ulong hash, ReadOnlySpan<byte> key, Version version, int tombstones)
    {
        var bucket = AntiEntropy.BucketOf(hash);
        _digests[bucket] ^= AntiEntropy.EntryDigest(key, version);
        _tombstones[bucket] += tombstones;
        Tombstones += tombstones;
    }
}
