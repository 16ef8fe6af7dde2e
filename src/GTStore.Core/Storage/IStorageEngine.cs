namespace GTStore.Core;

/// <summary>
/// A storage operation failed (disk full, I/O error): an expected failure the node reports to the
/// requester, not a bug. The message names the cause.
/// </summary>
public sealed class StorageException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>One stored entry: the key's ring hash, the key and its latest version.</summary>
public readonly record struct StoredEntry(ulong Hash, byte[] Key, VersionedValue Value);

/// <summary>
/// A value cache's counters: reads it answered, reads that had to search further (the write log,
/// then RocksDB), and the bytes and entries it holds.
/// </summary>
public readonly record struct CacheStats(long Hits, long Misses, long Bytes, long Entries);

/// <summary>Where a range scan stopped: the next batch starts strictly after (Hash, Key).</summary>
public readonly record struct ScanCursor(ulong Hash, byte[] Key);

/// <summary>
/// A node's local store, ordered by (hash, key) so that a partition (a ring range) is a contiguous
/// scan. Engines merge by version: a put whose version is not newer than the stored one is a no-op.
/// Implementations are synchronous; durable engines make a write durable before returning when
/// configured to. The interface lives in Core so that node logic runs unchanged over the in-memory
/// engine in the simulation and over a durable engine in production.
/// </summary>
public interface IStorageEngine : IDisposable
{
    /// <summary>Name shown by status ("memory", "rocksdb").</summary>
    string Name { get; }

    /// <summary>Stored entries, tombstones included.</summary>
    long Count { get; }

    VersionedValue? Get(ulong hash, ReadOnlySpan<byte> key);

    /// <summary>
    /// A hint that the key with ring hash <paramref name="hash"/> is about to be read or written:
    /// the engine may start loading what that will touch. Changes nothing.
    /// </summary>
    void Prefetch(ulong hash)
    {
    }

    /// <summary>The version held for the key (null: not held); an engine may answer it without reading the value.</summary>
    Version? VersionOf(ulong hash, ReadOnlySpan<byte> key) => Get(hash, key)?.Version;

    /// <summary>
    /// The XOR of <see cref="AntiEntropy.EntryDigest(StoredEntry)"/> over the entries held in
    /// <paramref name="bucket"/> (<see cref="AntiEntropy.BucketOf"/>), kept up to date by every
    /// put, removal and drop, so that anti-entropy summarises a range without reading it; null
    /// when the engine keeps no digests (anti-entropy then reads the range).
    /// </summary>
    ulong? BucketDigest(int bucket) => null;

    /// <summary>
    /// How many of the entries held in <paramref name="bucket"/> are tombstones, kept up to date
    /// like <see cref="BucketDigest"/>, so that a tombstone purge reads only the buckets that hold
    /// some; null when the engine does not count them (a purge round then reads its whole range).
    /// </summary>
    int? BucketTombstones(int bucket) => null;

    /// <summary>Tombstones held in all (the sum of <see cref="BucketTombstones"/>); null when not counted.</summary>
    long? TombstoneCount => null;

    /// <summary>The engine's value cache, counted since it opened; null when it has none.</summary>
    CacheStats? ValueCacheStats => null;

    /// <summary>
    /// Stores <paramref name="value"/> if it is newer than what is held; returns whether it was
    /// stored. Throws <see cref="StorageException"/> when the write cannot be made.
    /// </summary>
    bool Put(ulong hash, ReadOnlySpan<byte> key, VersionedValue value);

    /// <summary>
    /// Up to <paramref name="maxEntries"/> entries (and about <paramref name="maxBytes"/> of keys and
    /// values, at least one entry) of <paramref name="range"/> in ring order after <paramref name="after"/>.
    /// Returns the cursor for the next call, or null when the range is exhausted.
    /// </summary>
    ScanCursor? Scan(HashRange range, ScanCursor? after, int maxEntries, int maxBytes, List<StoredEntry> into);

    /// <summary>
    /// Removes the key only if what is held is exactly <paramref name="version"/> (compare-and-delete,
    /// used to purge a tombstone: a newer write that arrived meanwhile survives); returns whether it
    /// was removed. Durable like a put (the same fsync mode). Throws <see cref="StorageException"/>
    /// when the removal cannot be made.
    /// </summary>
    bool RemoveIfVersion(ulong hash, ReadOnlySpan<byte> key, Version version);

    /// <summary>Removes every entry of <paramref name="range"/>; returns how many were removed.</summary>
    long DropRange(HashRange range);

    /// <summary>Makes every completed put durable (no-op for memory).</summary>
    void Flush();
}
