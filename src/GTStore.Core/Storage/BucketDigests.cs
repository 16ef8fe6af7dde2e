namespace GTStore.Core;

/// <summary>
/// What an engine keeps for <see cref="IStorageEngine.BucketDigest"/>: per bucket, the XOR of the
/// digests of the entries held there (512 KiB). An entry enters and leaves a bucket by the same
/// XOR, so replacing a version is two toggles. Not thread-safe: the engine calls it under its lock.
/// </summary>
public sealed class BucketDigests
{
    private readonly ulong[] _digests = new ulong[AntiEntropy.Buckets];

    public ulong this[int bucket] => _digests[bucket];

    public void Clear() => Array.Clear(_digests);

    /// <summary>Adds the entry if it was absent, removes it if it was present.</summary>
    public void Toggle(ulong hash, ReadOnlySpan<byte> key, Version version) =>
        _digests[AntiEntropy.BucketOf(hash)] ^= AntiEntropy.EntryDigest(key, version);

    /// <summary>The key was held at <paramref name="held"/> (null: not held) and now is at <paramref name="version"/>.</summary>
    public void Replace(ulong hash, ReadOnlySpan<byte> key, Version? held, Version version)
    {
        if (held is { } old)
            Toggle(hash, key, old);
        Toggle(hash, key, version);
    }
}
