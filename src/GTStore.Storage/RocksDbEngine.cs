using System.Buffers.Binary;
using System.Runtime.InteropServices;
using GTStore.Core;
using RocksDbSharp;

namespace GTStore.Storage;

/// <summary>When a write becomes durable (like Redis's appendfsync).</summary>
public enum FsyncMode
{
    /// <summary>
    /// Every write is synced to disk before it is acknowledged: the node host syncs once after each
    /// batch of inputs and only then sends their acknowledgements (group commit).
    /// </summary>
    Always,
    /// <summary>Writes are synced on the host's timer (every tick, 20 ms); a machine crash may lose the last tick's writes.</summary>
    Batch,
    /// <summary>The OS decides; a machine crash may lose recent writes (a process crash does not).</summary>
    None,
}

/// <summary>
/// Durable engine over RocksDB. Entries are keyed by the 8-byte big-endian ring hash followed by
/// the key, so a partition is one contiguous range of the keyspace and an iterator seek starts a
/// scan. A stored value is: version timestamp (i64 LE), version node (i32 LE), a tombstone flag
/// byte, then the value bytes.
/// </summary>
/// <remarks>
/// In <see cref="FsyncMode.Batch"/> and <see cref="FsyncMode.None"/> a batch of inputs' puts and
/// removals are staged and reach RocksDB as one write batch, and RocksDB runs with
/// <c>manual_wal_flush</c>: the write appends to a log buffer in this process, and the host hands
/// the buffer to the OS once per batch of inputs, before it acknowledges them
/// (<see cref="FlushWal"/>), instead of one write(2) per put. Dropping a range
/// (<see cref="DropRange"/>) syncs at once.
/// </remarks>
public sealed class RocksDbEngine : IStorageEngine
{
    private const int HashBytes = 8;

    /// <summary>Memtable size; also the free space RocksDB needs before it resumes after ENOSPC.</summary>
    public const ulong WriteBufferBytes = 16 * 1024 * 1024;
    /// <summary>Cache of uncompressed blocks (and filters) shared by reads; RocksDB's default is 32 MiB too.</summary>
    public const ulong BlockCacheBytes = 32 * 1024 * 1024;

    /// <summary>Share of the write buffer given to the memtable's Bloom filter.</summary>
    private const double MemtableBloomRatio = 0.1;

    /// <summary>
    /// Default budget of the value cache, which serves repeated reads of a key without searching
    /// RocksDB (as Cassandra's row cache does); about 280k 100-byte values with 20-byte keys. A put
    /// refreshes a cached key's entry and leaves an uncached key uncached, so that writes alone do
    /// not fill it.
    /// </summary>
    public const long ValueCacheBytes = 48 * 1024 * 1024;

    /// <summary>Largest value cache (1 GiB: one array).</summary>
    public const long ValueCacheBytesMax = ValueCache.CapacityBytesMax;

    /// <summary>A stored value starts with the version's timestamp (8 bytes) and node (4), then the tombstone flag.</summary>
    private const int ValueHeaderBytes = 8 + 4 + 1;

    private const int TombstoneByte = 12;

    private readonly RocksDb _db;
    private readonly WriteOptions _write = new WriteOptions().SetSync(false);
    private readonly FsyncMode _fsync;
    private readonly VersionIndex _index = new();
    private readonly BucketDigests _digests = new();
    private readonly ValueCache _cache;

    // Staging (fsync none and batch): the puts and removals of one loop step reach RocksDB as one
    // write batch when the step ends (FlushWal), instead of a write each; until then reads find
    // them here. All calls come from the node's loop in these modes.
    private readonly WriteBatch _staged = new();
    private readonly Dictionary<byte[], VersionedValue?> _stagedValues = new(StoredKeyComparer.Instance);

    /// <summary>Why the last staged batch could not be written; until a write succeeds again, puts write at once and fail with it.</summary>
    private string? _stagingFailed;
    private long _count;
    // Writes appended to the log, and how many of them a sync has covered (group commit may sync
    // on another thread than the one writing).
    private long _writeSeq;
    private long _syncedSeq;
    private long _walWrittenSeq;
    private readonly Lock _syncLock = new();

    /// <param name="valueCacheBytes">Budget of the cache of recently read values (<see cref="ValueCacheBytes"/>).</param>
    public RocksDbEngine(string directory, FsyncMode fsync = FsyncMode.Always, long valueCacheBytes = ValueCacheBytes)
    {
        _cache = new ValueCache(valueCacheBytes);
        Directory.CreateDirectory(directory);
        _fsync = fsync;
        // RocksDB resumes after a full disk only once a write buffer's worth of space is free:
        // 16 MiB (not the 64 MiB default) lets a node recover sooner when space returns.
        // Most reads of a key that is not in a given file can skip it: a Bloom filter per table
        // (10 bits per key, ~1% false positives) saves the index and data block searches of files
        // that cannot hold the key.
        var table = new BlockBasedTableOptions()
            .SetFilterPolicy(BloomFilterPolicy.Create(10, false))
            .SetWholeKeyFiltering(true)
            .SetBlockCache(Cache.CreateLru(BlockCacheBytes));
        // The same for the memtable: a Bloom filter over its whole keys (a tenth of the write buffer,
        // 1.6 MiB) lets a read of a key written before the last flush skip the skip-list search.
        var options = new DbOptions().SetCreateIfMissing(true).SetWriteBufferSize(WriteBufferBytes)
            .SetBlockBasedTableFactory(table)
            .SetMemtablePrefixBloomSizeRatio(MemtableBloomRatio);
        Native.Instance.rocksdb_options_set_memtable_whole_key_filtering(options.Handle, 1);
        // Without fsync per batch, log writes stay in RocksDB's buffer until FlushWal: one
        // write(2) per batch of inputs, not per put; the host calls it before any acknowledgement.
        // With fsync always a put still writes at once, so that a full disk fails the put itself
        // with a clear error rather than the batch's sync.
        if (Staging)
            Native.Instance.rocksdb_options_set_manual_wal_flush(options.Handle, 1);
        _db = RocksDb.Open(options, directory);
        _count = LoadIndex();
    }

    public string Name => "rocksdb";

    public FsyncMode Fsync => _fsync;

    /// <summary>Writes are staged per loop step and the log is flushed by the host (every mode but <see cref="FsyncMode.Always"/>).</summary>
    private bool Staging => _fsync != FsyncMode.Always;

    public long Count => Interlocked.Read(ref _count);

    /// <summary>Builds the version index from every stored entry; returns how many there are.</summary>
    private long LoadIndex()
    {
        long n = 0;
        using var it = _db.NewIterator();
        for (it.SeekToFirst(); it.Valid(); it.Next())
        {
            var k = it.GetKeySpan();
            if (k.Length < HashBytes)
                continue;
            var hash = BinaryPrimitives.ReadUInt64BigEndian(k);
            var stored = it.GetValueSpan();
            var version = DecodeVersion(stored);
            var tombstone = IsTombstone(stored);
            _index.Set(hash, VersionIndex.Fingerprint(k[HashBytes..]), version, tombstone);
            _digests.Add(hash, k[HashBytes..], version, tombstone);
            n++;
        }
        return n;
    }

    /// <summary>
    /// The version held for the key and whether it is a tombstone (null: not held), from the index
    /// or, for a shared hash, the store.
    /// </summary>
    private (Core.Version Version, bool Tombstone)? Held(ulong hash, ReadOnlySpan<byte> key, ulong fingerprint)
    {
        switch (_index.Find(hash, fingerprint, out var version, out var tombstone))
        {
            case VersionIndex.Found.Absent:
                return null;
            case VersionIndex.Found.Held:
                return (version, tombstone);
            default:
                return Get(hash, key) is { } stored ? (stored.Version, stored.IsTombstone) : null;
        }
    }

    private static byte[] StoredKey(ulong hash, ReadOnlySpan<byte> key)
    {
        var k = new byte[HashBytes + key.Length];
        BinaryPrimitives.WriteUInt64BigEndian(k, hash);
        key.CopyTo(k.AsSpan(HashBytes));
        return k;
    }

    /// <summary>Values up to this size are encoded into a buffer kept for the next one.</summary>
    private const int EncodeBufferBytesKept = 64 * 1024;

    private byte[] _encodeBuffer = new byte[256]; // Guarded by _index, as every write is.

    /// <summary>
    /// The stored form of <paramref name="v"/>, valid until the next call: RocksDB copies it into
    /// its batch or memtable, so no array is made per write.
    /// </summary>
    private ReadOnlySpan<byte> Encode(VersionedValue v)
    {
        var length = ValueHeaderBytes + (v.Value?.Length ?? 0);
        if (length > EncodeBufferBytesKept)
            return EncodeInto(new byte[length], v); // A large value: its buffer is not kept.
        if (length > _encodeBuffer.Length)
            _encodeBuffer = new byte[Math.Min(EncodeBufferBytesKept, Math.Max(length, 2 * _encodeBuffer.Length))];
        return EncodeInto(_encodeBuffer, v);
    }

    private static Span<byte> EncodeInto(byte[] buffer, VersionedValue v)
    {
        var bytes = buffer.AsSpan(0, ValueHeaderBytes + (v.Value?.Length ?? 0));
        BinaryPrimitives.WriteInt64LittleEndian(bytes, v.Version.Timestamp);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[8..], v.Version.Node);
        bytes[TombstoneByte] = v.IsTombstone ? (byte)1 : (byte)0;
        v.Value?.CopyTo(bytes[ValueHeaderBytes..]);
        return bytes;
    }

    private static VersionedValue Decode(ReadOnlySpan<byte> bytes) =>
        new(DecodeVersion(bytes), IsTombstone(bytes) ? null : bytes[ValueHeaderBytes..].ToArray());

    /// <summary>Whether a stored value (its header checked by <see cref="DecodeVersion"/>) is a tombstone.</summary>
    private static bool IsTombstone(ReadOnlySpan<byte> bytes) => bytes[TombstoneByte] == 1;

    private static Core.Version DecodeVersion(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < ValueHeaderBytes)
            throw new InvalidDataException($"stored value of {bytes.Length} bytes is shorter than its {ValueHeaderBytes}-byte header");
        return new Core.Version(BinaryPrimitives.ReadInt64LittleEndian(bytes), BinaryPrimitives.ReadInt32LittleEndian(bytes[8..]));
    }

    /// <summary>
    /// From the value cache when the key was read lately (a put refreshes its entry); not read at all
    /// when the version index says the key is not held; else from RocksDB, and cached.
    /// </summary>
    public VersionedValue? Get(ulong hash, ReadOnlySpan<byte> key)
    {
        lock (_index)
        {
            var k = _stagedValues.Count > 0 ? StoredKey(hash, key) : null;
            if (k is not null && _stagedValues.TryGetValue(k, out var staged))
                return staged;
            if (_cache.TryGet(hash, key, out var cached))
                return cached;
            if (_index.Find(hash, VersionIndex.Fingerprint(key), out _, out _) == VersionIndex.Found.Absent)
                return null;
            var stored = _db.Get(k ?? StoredKey(hash, key));
            if (stored is null)
                return null;
            var value = Decode(stored);
            _cache.Set(hash, key, value);
            return value;
        }
    }

    public ulong? BucketDigest(int bucket)
    {
        lock (_index)
            return _digests[bucket];
    }

    public int? BucketTombstones(int bucket)
    {
        lock (_index)
            return _digests.TombstonesIn(bucket);
    }

    public long? TombstoneCount
    {
        get
        {
            lock (_index)
                return _digests.Tombstones;
        }
    }

    /// <summary>From the version index: no RocksDB read unless another key shares the ring hash.</summary>
    public Core.Version? VersionOf(ulong hash, ReadOnlySpan<byte> key)
    {
        var fingerprint = VersionIndex.Fingerprint(key);
        lock (_index)
            return Held(hash, key, fingerprint)?.Version;
    }

    public bool Put(ulong hash, ReadOnlySpan<byte> key, VersionedValue value)
    {
        var k = StoredKey(hash, key);
        var fingerprint = VersionIndex.Fingerprint(key);
        lock (_index)
        {
            var held = Held(hash, key, fingerprint);
            if (held?.Version >= value.Version)
                return false;
            Apply(k, value);
            _index.Set(hash, fingerprint, value.Version, value.IsTombstone);
            _digests.Replace(hash, key, held, value.Version, value.IsTombstone);
            _cache.Update(hash, key, value);
            if (held is null)
                Interlocked.Increment(ref _count);
        }
        Interlocked.Increment(ref _writeSeq);
        return true;
    }

    /// <summary>
    /// Stages a put (<paramref name="value"/>) or a removal (null); with fsync always, or after a
    /// staged batch failed, writes it at once and throws <see cref="StorageException"/> if it fails.
    /// </summary>
    private void Apply(byte[] k, VersionedValue? value)
    {
        if (Staging && _stagingFailed is null)
        {
            if (value is { } put)
                _staged.Put(k, Encode(put), null);
            else
                _staged.Delete(k);
            _stagedValues[k] = value;
            return;
        }
        try
        {
            if (value is { } put)
                _db.Put(k, Encode(put), null, _write);
            else
                _db.Remove(k, null, _write);
            _stagingFailed = null;
        }
        catch (RocksDbException e)
        {
            throw new StorageException((value is null ? "remove" : "write") + " failed: " + e.Message, e);
        }
    }

    public bool RemoveIfVersion(ulong hash, ReadOnlySpan<byte> key, Core.Version version)
    {
        var k = StoredKey(hash, key);
        var fingerprint = VersionIndex.Fingerprint(key);
        lock (_index)
        {
            if (Held(hash, key, fingerprint) is not { } held || held.Version != version)
                return false;
            Apply(k, null); // Unsynced like a put: the group commit (SyncPending) or the batch timer makes it durable.
            _index.Remove(hash, fingerprint);
            _digests.Remove(hash, key, version, held.Tombstone);
            _cache.Remove(hash, key);
        }
        Interlocked.Decrement(ref _count);
        Interlocked.Increment(ref _writeSeq);
        return true;
    }

    public ScanCursor? Scan(HashRange range, ScanCursor? after, int maxEntries, int maxBytes, List<StoredEntry> into)
    {
        WriteStaged();
        var segments = range.Segments().ToList();
        var first = after is { } c ? segments.FindIndex(s => c.Hash >= s.Low && c.Hash <= s.High) : 0;
        var taken = 0;
        var bytes = 0;
        using var it = _db.NewIterator();
        for (var s = Math.Max(first, 0); s < segments.Count; s++)
        {
            var (low, high) = segments[s];
            var resume = s == first && after is { } a ? StoredKey(a.Hash, a.Key) : null;
            it.Seek(resume ?? StoredKey(low, []));
            if (resume is not null && it.Valid() && it.GetKeySpan().SequenceEqual(resume))
                it.Next();
            for (; it.Valid(); it.Next())
            {
                var k = it.GetKeySpan();
                if (k.Length < HashBytes)
                    continue;
                var hash = BinaryPrimitives.ReadUInt64BigEndian(k);
                if (hash > high)
                    break;
                if (taken >= maxEntries || (taken > 0 && bytes >= maxBytes))
                    return new ScanCursor(into[^1].Hash, into[^1].Key);
                var entry = new StoredEntry(hash, k[HashBytes..].ToArray(), Decode(it.GetValueSpan()));
                into.Add(entry);
                taken++;
                bytes += entry.Key.Length + (entry.Value.Value?.Length ?? 0);
            }
        }
        return null;
    }

    public long DropRange(HashRange range)
    {
        WriteStaged();
        long removed = 0;
        var dropped = new List<(ulong Hash, byte[] Key, Core.Version Version, bool Tombstone)>();
        using var batch = new WriteBatch();
        using (var it = _db.NewIterator())
        {
            foreach (var (low, high) in range.Segments())
            {
                for (it.Seek(StoredKey(low, [])); it.Valid(); it.Next())
                {
                    var k = it.GetKeySpan();
                    if (k.Length < HashBytes)
                        continue;
                    var hash = BinaryPrimitives.ReadUInt64BigEndian(k);
                    if (hash > high)
                        break;
                    batch.Delete(k.ToArray());
                    var stored = it.GetValueSpan();
                    dropped.Add((hash, k[HashBytes..].ToArray(), DecodeVersion(stored), IsTombstone(stored)));
                    removed++;
                }
            }
        }
        if (removed > 0)
        {
            try
            {
                lock (_index)
                {
                    _db.Write(batch, _write);
                    foreach (var (hash, key, version, tombstone) in dropped)
                    {
                        _index.RemoveHash(hash);
                        _digests.Remove(hash, key, version, tombstone);
                        _cache.Remove(hash, key);
                    }
                }
                lock (_syncLock)
                    WriteWal(sync: true);
            }
            catch (RocksDbException e)
            {
                throw new StorageException("dropping a range failed: " + e.Message, e);
            }
            Interlocked.Add(ref _count, -removed);
        }
        return removed;
    }

    /// <summary>
    /// Makes every write appended before the call durable with one fsync of the log (group
    /// commit); in <see cref="FsyncMode.None"/> only hands them to the OS (<see cref="FlushWal"/>).
    /// A no-op when nothing is pending. Safe to call from another thread than the writer's.
    /// </summary>
    public void SyncPending()
    {
        if (_fsync == FsyncMode.None)
            FlushWal();
        else
        {
            WriteStaged();
            WriteWalUpTo(ref _syncedSeq, sync: true);
        }
    }

    /// <summary>
    /// Writes the staged batch to RocksDB and hands every write made before the call to the OS
    /// (write(2), no fsync), so that a crash of this process cannot lose it; a no-op when nothing
    /// is staged or buffered. The host calls it after each batch of inputs, before their
    /// acknowledgements leave (in <see cref="FsyncMode.Always"/> it calls <see cref="SyncPending"/> instead).
    /// </summary>
    /// <exception cref="StorageException">The staged batch or the write to the log file failed.</exception>
    public void FlushWal()
    {
        WriteStaged();
        WriteWalUpTo(ref _walWrittenSeq, sync: false);
    }

    /// <summary>
    /// Writes the staged puts and removals to RocksDB as one batch. When that fails, none of them
    /// was acknowledged (the host withholds the step's acknowledgements), so the in-memory state
    /// built from them is rebuilt from what RocksDB holds, and puts write at once until one succeeds.
    /// </summary>
    private void WriteStaged()
    {
        if (!Staging)
            return;
        lock (_index)
        {
            if (_stagedValues.Count == 0)
                return;
            try
            {
                _db.Write(_staged, _write);
            }
            catch (RocksDbException e)
            {
                _stagingFailed = e.Message;
                Reload();
                throw new StorageException("write failed: " + e.Message, e);
            }
            finally
            {
                _staged.Clear();
                _stagedValues.Clear();
            }
        }
    }

    /// <summary>Rebuilds the version index, digests and count from RocksDB, and empties the value cache.</summary>
    private void Reload()
    {
        _index.Clear();
        _digests.Clear();
        _cache.Clear();
        Interlocked.Exchange(ref _count, LoadIndex());
    }

    /// <summary>Writes (and with <paramref name="sync"/> fsyncs) the log unless <paramref name="covered"/> already reaches the last write.</summary>
    private void WriteWalUpTo(ref long covered, bool sync)
    {
        var target = Interlocked.Read(ref _writeSeq);
        lock (_syncLock)
        {
            if (target <= covered)
                return;
            WriteWal(sync);
            covered = target;
            if (sync)
                _walWrittenSeq = Math.Max(_walWrittenSeq, target);
        }
    }

    private void WriteWal(bool sync)
    {
        Native.Instance.rocksdb_flush_wal(_db.Handle, sync ? (byte)1 : (byte)0, out var error);
        if (error != IntPtr.Zero)
        {
            var message = Marshal.PtrToStringUTF8(error) ?? "unknown error";
            Native.Instance.rocksdb_free(error);
            throw new StorageException((sync ? "fsync of" : "write to") + " the write-ahead log failed: " + message);
        }
    }

    public void Flush()
    {
        WriteStaged();
        lock (_syncLock)
        {
            WriteWal(sync: true);
            _syncedSeq = _walWrittenSeq = Interlocked.Read(ref _writeSeq);
        }
    }

    public void Dispose()
    {
        Flush();
        _db.Dispose();
    }
}
