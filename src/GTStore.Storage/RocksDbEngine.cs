using System.Buffers.Binary;
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
/// scan (<see cref="StoredValue"/> gives both forms).
/// </summary>
/// <remarks>
/// In <see cref="FsyncMode.Batch"/> and <see cref="FsyncMode.None"/> puts and removals go to the
/// engine's own write log (<see cref="WriteLog"/>), which the host hands to the OS once per batch of
/// inputs, before it acknowledges them (<see cref="FlushWal"/>): one write(2) per batch, not per
/// put. Once the log holds <see cref="LogBytesPerTable"/> it is written as one sorted table file,
/// which RocksDB ingests, and emptied; scans and range drops merge the log with RocksDB. In
/// <see cref="FsyncMode.Always"/> every put writes to RocksDB (and its log) at once. Dropping a range
/// (<see cref="DropRange"/>) syncs at once.
/// </remarks>
public sealed partial class RocksDbEngine : IStorageEngine
{
    private const int HashBytes = StoredValue.HashBytes;

    /// <summary>The write log's file, in the RocksDB directory (RocksDB leaves files it does not name alone).</summary>
    public const string LogFileName = "gtstore-writes.log";

    /// <summary>A full write log whose table is being written; older than <see cref="LogFileName"/>, so ingested first on open.</summary>
    public const string SealedLogFileName = "gtstore-writes.sealed.log";

    /// <summary>Table files being written from the log, before RocksDB ingests (moves) them.</summary>
    private const string TableFilePrefix = "gtstore-table-";

    /// <summary>Log size at which its latest records become a table: RocksDB's write buffer size.</summary>
    public const int LogBytesPerTable = (int)WriteBufferBytes;

    /// <summary>Memtable size; also the free space RocksDB needs before it resumes after ENOSPC.</summary>
    public const ulong WriteBufferBytes = 16 * 1024 * 1024;
    /// <summary>Cache of uncompressed blocks (and filters) shared by reads; RocksDB's default is 32 MiB too.</summary>
    public const ulong BlockCacheBytes = 32 * 1024 * 1024;

    /// <summary>
    /// Level-0 files (each a table from the write log, or a memtable flush) that start a
    /// compaction into level 1: 8, not RocksDB's 4. A compaction rewrites level 1 whole when a
    /// node's keys are overwritten often (every table then overlaps all of it), so waiting for 8
    /// files halves the bytes rewritten per write. Reads lose little: each file has a Bloom filter,
    /// and RocksDB slows writes only at 20 files. Measured interleaved on two warm 7-node clusters
    /// (2026-12-07, SET -P 16, 3M requests, 7 pairs): 6 of 7 pairs took less CPU per request with
    /// 8, by 3-13%; GET -P 16 did not lose.
    /// </summary>
    public const int Level0FilesPerCompaction = 8;

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

    private readonly RocksDb _db;
    private readonly WriteOptions _write = new WriteOptions().SetSync(false);
    private readonly FsyncMode _fsync;
    private readonly VersionIndex _index = new();
    private readonly BucketDigests _digests = new();
    private readonly ValueCache _cache;
    private long _cacheHits; // Reads the cache answered, and reads it did not (under the lock).
    private long _cacheMisses;

    private readonly DbOptions _options;
    private readonly string _directory;
    private readonly IngestExternalFileOptions _ingest = new IngestExternalFileOptions().SetMoveFiles(true);

    private long _count;
    // Writes appended to the log, and how many of them a sync has covered (group commit may sync
    // on another thread than the one writing).
    private long _writeSeq;
    private long _syncedSeq;
    private long _walWrittenSeq;
    private readonly Lock _syncLock = new();

    /// <param name="valueCacheBytes">Budget of the cache of recently read values (<see cref="ValueCacheBytes"/>).</param>
    /// <param name="logBytesPerTable">Write log size at which it becomes a table (<see cref="LogBytesPerTable"/>; tests make it small).</param>
    public RocksDbEngine(string directory, FsyncMode fsync = FsyncMode.Always, long valueCacheBytes = ValueCacheBytes, int logBytesPerTable = LogBytesPerTable)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(logBytesPerTable);
        _logBytesPerTable = _nextTableAt = logBytesPerTable;
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
            .SetMemtablePrefixBloomSizeRatio(MemtableBloomRatio)
            .SetLevel0FileNumCompactionTrigger(Level0FilesPerCompaction);
        Native.Instance.rocksdb_options_set_memtable_whole_key_filtering(options.Handle, 1);
        _options = options; // Table files written from the log get the same format.
        _directory = directory;
        _db = RocksDb.Open(options, directory);
        // Table files a crash left before RocksDB took them: their records are still in the log.
        foreach (var leftover in Directory.GetFiles(directory, TableFilePrefix + "*"))
            File.Delete(leftover);
        // A sealed log a crash left holds the older records: in RocksDB before the log's are read.
        // (RocksDB may hold its table already; ingesting it again changes nothing, as no later
        // table can have been ingested before it was deleted.)
        if (File.Exists(Path.Combine(directory, SealedLogFileName)))
        {
            using var older = new WriteLog(Path.Combine(directory, SealedLogFileName));
            WriteLogToTable(older);
            older.Delete();
        }
        // With fsync always a put writes RocksDB at once, so that a full disk fails the put itself
        // with a clear error rather than the batch's sync. A log left by the other modes is
        // ingested first: its records are acknowledged writes.
        var log = new WriteLog(Path.Combine(directory, LogFileName));
        if (Staging)
            _log = log;
        else
        {
            using (log)
                WriteLogToTable(log);
            File.Delete(Path.Combine(directory, LogFileName));
        }
        Reload();
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
            var version = StoredValue.VersionOf(stored);
            var tombstone = StoredValue.IsTombstone(stored);
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

    private static byte[] StoredKey(ulong hash, ReadOnlySpan<byte> key) => StoredValue.Key(hash, key);

    /// <summary>Values up to this size are encoded into a buffer kept for the next one.</summary>
    private const int EncodeBufferBytesKept = 64 * 1024;

    private byte[] _encodeBuffer = new byte[256]; // Guarded by _index, as every write is.

    /// <summary>
    /// The stored form of <paramref name="v"/>, valid until the next call: RocksDB copies it into
    /// its memtable, so no array is made per write.
    /// </summary>
    private ReadOnlySpan<byte> Encode(VersionedValue v)
    {
        var length = StoredValue.LengthOf(v);
        if (length > EncodeBufferBytesKept)
            return StoredValue.Encode(new byte[length], v); // A large value: its buffer is not kept.
        if (length > _encodeBuffer.Length)
            _encodeBuffer = new byte[Math.Min(EncodeBufferBytesKept, Math.Max(length, 2 * _encodeBuffer.Length))];
        return StoredValue.Encode(_encodeBuffer, v);
    }

    /// <summary>
    /// From the value cache when the key was read lately (a put refreshes its entry); not read at all
    /// when the version index says the key is not held; else from RocksDB, and cached.
    /// </summary>
    public VersionedValue? Get(ulong hash, ReadOnlySpan<byte> key)
    {
        lock (_index)
        {
            if (_cache.TryGet(hash, key, out var cached))
            {
                _cacheHits++;
                return cached;
            }
            _cacheMisses++;
            if (_log is not null && (_log.TryFind(hash, key, out var removed, out var logged)
                                     || _sealed is not null && _sealed.TryFind(hash, key, out removed, out logged)))
                return removed ? null : StoredValue.Decode(logged);
            if (_index.Find(hash, VersionIndex.Fingerprint(key), out _, out _) == VersionIndex.Found.Absent)
                return null;
            var stored = _db.Get(StoredKey(hash, key));
            if (stored is null)
                return null;
            var value = StoredValue.Decode(stored);
            _cache.Set(hash, key, value);
            return value;
        }
    }

    public CacheStats? ValueCacheStats
    {
        get
        {
            lock (_index)
                return new CacheStats(_cacheHits, _cacheMisses, _cache.Bytes, _cache.Count);
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

    /// <summary>
    /// Starts loading the slots a read or write of the key will look up (the version index's, the
    /// value cache's, the logs'), all at once: each is a memory miss on a node with more keys than
    /// the caches hold, and a put otherwise waits for them one after another. Called on the
    /// writer's thread, without the lock: it only reads table addresses, and a prefetch of a stale
    /// one cannot fault.
    /// </summary>
    public void Prefetch(ulong hash)
    {
        _index.Prefetch(hash);
        _cache.Prefetch(hash);
        _log?.Prefetch(hash);
        _sealed?.Prefetch(hash);
    }

    public bool Put(ulong hash, ReadOnlySpan<byte> key, VersionedValue value)
    {
        var fingerprint = VersionIndex.Fingerprint(key);
        lock (_index)
        {
            var held = Held(hash, key, fingerprint);
            if (held?.Version >= value.Version)
                return false;
            Apply(hash, key, value);
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
    /// Logs a put (<paramref name="value"/>) or a removal (null); with fsync always, writes it to
    /// RocksDB at once. Throws <see cref="StorageException"/> if the write fails, and then nothing
    /// of it is kept. After a failed write of the log, each write reaches the file before it counts.
    /// </summary>
    private void Apply(ulong hash, ReadOnlySpan<byte> key, VersionedValue? value)
    {
        if (_log is not null)
        {
            if (_logFailed is null)
            {
                _log.Append(hash, key, value);
                return;
            }
            var at = _log.AppendUnindexed(hash, key, value);
            try
            {
                _log.WriteOut();
            }
            catch (IOException e)
            {
                _log.DiscardUnwritten();
                _logFailed = e.Message;
                throw new StorageException((value is null ? "remove" : "write") + " failed: " + e.Message, e);
            }
            _log.IndexLast(at);
            _logFailed = null;
            return;
        }
        try
        {
            if (value is { } put)
                _db.Put(StoredKey(hash, key), Encode(put), null, _write);
            else
                _db.Remove(StoredKey(hash, key), null, _write);
        }
        catch (RocksDbException e)
        {
            throw new StorageException((value is null ? "remove" : "write") + " failed: " + e.Message, e);
        }
    }

    public bool RemoveIfVersion(ulong hash, ReadOnlySpan<byte> key, Core.Version version)
    {
        var fingerprint = VersionIndex.Fingerprint(key);
        lock (_index)
        {
            if (Held(hash, key, fingerprint) is not { } held || held.Version != version)
                return false;
            Apply(hash, key, null); // Unsynced like a put: the group commit (SyncPending) or the batch timer makes it durable.
            _index.Remove(hash, fingerprint);
            _digests.Remove(hash, key, version, held.Tombstone);
            _cache.Remove(hash, key);
        }
        Interlocked.Decrement(ref _count);
        Interlocked.Increment(ref _writeSeq);
        return true;
    }

    /// <summary>RocksDB's entries merged with the write log's latest records, which replace (or, as removals, hide) RocksDB's for their keys.</summary>
    public ScanCursor? Scan(HashRange range, ScanCursor? after, int maxEntries, int maxBytes, List<StoredEntry> into)
    {
        lock (_index)
        {
            var segments = range.Segments().ToList();
            var first = after is { } c ? segments.FindIndex(s => c.Hash >= s.Low && c.Hash <= s.High) : 0;
            var taken = 0;
            var bytes = 0;
            using var it = _db.NewIterator();
            for (var s = Math.Max(first, 0); s < segments.Count; s++)
            {
                var (low, high) = segments[s];
                var resume = s == first && after is { } a ? StoredKey(a.Hash, a.Key) : null;
                var logged = LoggedIn(low, high, resume);
                var next = 0;
                it.Seek(resume ?? StoredKey(low, []));
                if (resume is not null && it.Valid() && it.GetKeySpan().SequenceEqual(resume))
                    it.Next();
                while (true)
                {
                    while (it.Valid() && it.GetKeySpan().Length < HashBytes)
                        it.Next();
                    var inDb = it.Valid() && BinaryPrimitives.ReadUInt64BigEndian(it.GetKeySpan()) <= high;
                    if (!inDb && next == logged.Count)
                        break;
                    var order = !inDb ? 1 : next == logged.Count ? -1 : it.GetKeySpan().SequenceCompareTo(logged[next].StoredKey);
                    StoredEntry entry;
                    if (order < 0)
                    {
                        var k = it.GetKeySpan();
                        entry = new StoredEntry(BinaryPrimitives.ReadUInt64BigEndian(k), k[HashBytes..].ToArray(), StoredValue.Decode(it.GetValueSpan()));
                        it.Next();
                    }
                    else
                    {
                        if (order == 0)
                            it.Next(); // Replaced by the log's record.
                        var (k, value) = logged[next++];
                        if (value is not { } v)
                            continue; // Removed.
                        entry = new StoredEntry(BinaryPrimitives.ReadUInt64BigEndian(k), k[HashBytes..], v);
                    }
                    if (taken >= maxEntries || (taken > 0 && bytes >= maxBytes))
                        return new ScanCursor(into[^1].Hash, into[^1].Key);
                    into.Add(entry);
                    taken++;
                    bytes += entry.Key.Length + (entry.Value.Value?.Length ?? 0);
                }
            }
            return null;
        }
    }

    /// <summary>
    /// Removes every entry of the range: the write logs' get a removal record each in the new log
    /// (which hides the sealed log's records and, once a table, their copies in RocksDB), RocksDB's
    /// (the keys no log holds) a deletion; both are synced at once.
    /// </summary>
    public long DropRange(HashRange range)
    {
        lock (_index)
        {
            long removed = 0;
            var logged = new HashSet<byte[]>(StoredKeyComparer.Instance);
            var dropped = new List<(ulong Hash, byte[] Key, Core.Version Version, bool Tombstone)>();
            using var batch = new WriteBatch();
            using (var it = _db.NewIterator())
            {
                foreach (var (low, high) in range.Segments())
                {
                    foreach (var (k, value) in LoggedIn(low, high, null))
                    {
                        logged.Add(k); // Its RocksDB entry, if any, is hidden by the log's record.
                        if (value is { } v)
                            dropped.Add((BinaryPrimitives.ReadUInt64BigEndian(k), k[HashBytes..], v.Version, v.IsTombstone));
                    }
                    for (it.Seek(StoredKey(low, [])); it.Valid(); it.Next())
                    {
                        var k = it.GetKeySpan();
                        if (k.Length < HashBytes)
                            continue;
                        var hash = BinaryPrimitives.ReadUInt64BigEndian(k);
                        if (hash > high)
                            break;
                        var key = k.ToArray();
                        if (logged.Contains(key))
                            continue;
                        batch.Delete(key);
                        var stored = it.GetValueSpan();
                        dropped.Add((hash, key[HashBytes..], StoredValue.VersionOf(stored), StoredValue.IsTombstone(stored)));
                    }
                }
            }
            if (dropped.Count == 0)
                return 0;
            var removalsLogged = false;
            try
            {
                foreach (var (hash, key, version, tombstone) in dropped)
                {
                    if (_log is not null && logged.Count > 0 && logged.Contains(StoredKey(hash, key)))
                    {
                        Apply(hash, key, null);
                        removalsLogged = true;
                    }
                    _index.RemoveHash(hash);
                    _digests.Remove(hash, key, version, tombstone);
                    _cache.Remove(hash, key);
                    removed++;
                }
                // Only what the drop wrote is synced: RocksDB's log for its deletions, the write
                // log for its removal records.
                if (batch.Count() > 0)
                {
                    _db.Write(batch, _write);
                    lock (_syncLock)
                        WriteWal(sync: true);
                }
                if (removalsLogged)
                    SyncLog();
            }
            catch (RocksDbException e)
            {
                throw new StorageException("dropping a range failed: " + e.Message, e);
            }
            finally
            {
                Interlocked.Add(ref _count, -removed);
            }
            return removed;
        }
    }

    /// <summary>
    /// Rebuilds the version index, digests and count from RocksDB and the write log, and empties
    /// the value cache.
    /// </summary>
    private void Reload()
    {
        _index.Clear();
        _digests.Clear();
        _cache.Clear();
        var n = LoadIndex();
        // Each key's latest log record replaces what RocksDB holds for it, the new log's the sealed one's.
        _sealed?.ForEachLatest(Overlay);
        _log?.ForEachLatest(Overlay);
        Interlocked.Exchange(ref _count, n);

        void Overlay(ulong hash, ReadOnlySpan<byte> key, bool removed, ReadOnlySpan<byte> stored)
        {
            var fingerprint = VersionIndex.Fingerprint(key);
            (Core.Version Version, bool Tombstone)? held = _index.Find(hash, fingerprint, out var version, out var tombstone) switch
            {
                VersionIndex.Found.Absent => null,
                VersionIndex.Found.Held => (version, tombstone),
                _ => _db.Get(StoredKey(hash, key)) is { } inDb ? (StoredValue.VersionOf(inDb), StoredValue.IsTombstone(inDb)) : null,
            };
            if (removed)
            {
                if (held is not { } h)
                    return;
                _index.Remove(hash, fingerprint);
                _digests.Remove(hash, key, h.Version, h.Tombstone);
                n--;
                return;
            }
            var logged = StoredValue.VersionOf(stored);
            var loggedTombstone = StoredValue.IsTombstone(stored);
            _index.Set(hash, fingerprint, logged, loggedTombstone);
            _digests.Replace(hash, key, held, logged, loggedTombstone);
            if (held is null)
                n++;
        }
    }

    public void Dispose()
    {
        Flush();
        lock (_index)
            ReleaseTable(wait: true);
        _sealed?.Dispose(); // Its table failed: its file stays, ingested on the next open.
        _log?.Dispose();
        _db.Dispose();
    }
}
