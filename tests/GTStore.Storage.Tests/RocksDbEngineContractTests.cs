using System.Text;
using GTStore.Core;

namespace GTStore.Storage.Tests;

/// <summary>
/// The storage contract over RocksDB, plus what only a durable engine promises: data survives a
/// reopen (DESIGN.md "Storage": "durable (RocksDB ...)"). Each engine gets its own directory.
/// </summary>
public sealed class RocksDbEngineContractTests : StorageEngineContractTests, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "gtstore-rocks-" + Guid.NewGuid().ToString("N"));
    private int _next;

    // RocksDB opens are slower than dictionaries; fewer property iterations keep the suite quick.
    protected override int PropertyIterations => 25;

    protected override IStorageEngine CreateEngine() => new RocksDbEngine(Path.Combine(_root, (_next++).ToString(System.Globalization.CultureInfo.InvariantCulture)), FsyncMode.None);

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    // INFO gtstore's value_cache_hits / value_cache_misses. With fsync always a put goes to RocksDB
    // and leaves an uncached key uncached, so its first read searches RocksDB (a miss) and caches
    // it, and the next is a hit. With fsync none the key stays in the write log, which answers
    // from memory without caching: both reads are misses. A key not held is a miss; without a
    // cache every read is.
    [Theory]
    [InlineData(FsyncMode.Always, RocksDbEngine.ValueCacheBytes, 1)]
    [InlineData(FsyncMode.None, RocksDbEngine.ValueCacheBytes, 0)]
    [InlineData(FsyncMode.Always, 0, 0)]
    public void The_value_cache_counts_its_hits_and_misses(FsyncMode mode, long cacheBytes, long hits)
    {
        using var engine = new RocksDbEngine(Path.Combine(_root, $"counts-{mode}-{cacheBytes}"), mode, cacheBytes);
        var key = Encoding.UTF8.GetBytes("counted");
        Assert.Equal(new CacheStats(0, 0, 0, 0), engine.ValueCacheStats);
        Assert.True(engine.Put(42, key, new VersionedValue(new Core.Version(1, 1), [9])));
        Assert.Equal(new CacheStats(0, 0, 0, 0), engine.ValueCacheStats);

        Assert.NotNull(engine.Get(42, key));
        Assert.NotNull(engine.Get(42, key));
        Assert.Null(engine.Get(43, Encoding.UTF8.GetBytes("absent")));

        var stats = engine.ValueCacheStats!.Value;
        Assert.Equal((hits, 3 - hits), (stats.Hits, stats.Misses));
        Assert.Equal(hits, stats.Entries);
        Assert.Equal(hits > 0, stats.Bytes > 0);
    }

    [Theory]
    [InlineData(FsyncMode.Always)]
    [InlineData(FsyncMode.Batch)]
    [InlineData(FsyncMode.None)]
    public void Acknowledged_puts_and_drops_survive_a_reopen(FsyncMode mode)
    {
        var path = Path.Combine(_root, "reopen-" + mode);
        var keep = Encoding.UTF8.GetBytes("kept");
        var gone = Encoding.UTF8.GetBytes("dropped");
        var keepHash = 100UL;
        var goneHash = 5_000UL;
        using (var engine = new RocksDbEngine(path, mode))
        {
            Assert.True(engine.Put(keepHash, keep, new VersionedValue(new Core.Version(7, 1), [1, 2, 3])));
            Assert.True(engine.Put(goneHash, gone, new VersionedValue(new Core.Version(8, 2), null)));
            Assert.Equal(1, engine.DropRange(new HashRange(1_000, 10_000)));
            engine.SyncPending();
        }
        using var reopened = new RocksDbEngine(path, mode);
        Assert.Equal(1, reopened.Count);
        var held = reopened.Get(keepHash, keep);
        Assert.NotNull(held);
        Assert.Equal(new Core.Version(7, 1), held.Value.Version);
        Assert.Equal([1, 2, 3], held.Value.Value);
        Assert.Null(reopened.Get(goneHash, gone));
        // The bucket digests are rebuilt from what the directory holds.
        Assert.Equal(AntiEntropy.EntryDigest(keep, new Core.Version(7, 1)), reopened.BucketDigest(AntiEntropy.BucketOf(keepHash)));
    }

    [Fact]
    public void Reads_skip_memtables_and_tables_that_cannot_hold_the_key()
    {
        // Bloom filters over whole keys in the memtable and in every table: the options RocksDB
        // records in the directory say what it runs with.
        var options = OptionsWritten("options");
        Assert.Contains("memtable_whole_key_filtering=true", options, StringComparison.Ordinal);
        Assert.Matches(@"memtable_prefix_bloom_size_ratio=0\.10*\b", options);
        Assert.Contains("whole_key_filtering=true", options, StringComparison.Ordinal);
        Assert.Contains("filter_policy=bloomfilter", options, StringComparison.Ordinal);
    }

    /// <summary>The options RocksDB recorded in a directory the engine opened and wrote to.</summary>
    private string OptionsWritten(string name)
    {
        var path = Path.Combine(_root, name);
        using (var engine = new RocksDbEngine(path, FsyncMode.None))
            engine.Put(1, [1], new VersionedValue(new Core.Version(1, 1), [1]));
        return File.ReadAllText(Directory.GetFiles(path, "OPTIONS-*").Order(StringComparer.Ordinal).Last());
    }

    [Fact]
    public void Level_zero_waits_for_eight_files_before_a_compaction()
    {
        var options = OptionsWritten("level0");
        Assert.Contains($"level0_file_num_compaction_trigger={RocksDbEngine.Level0FilesPerCompaction}\n", options.Replace("\r", ""), StringComparison.Ordinal);
    }

    [Fact]
    public void Tombstone_counts_are_rebuilt_on_reopen()
    {
        var path = Path.Combine(_root, "tombstones");
        var deleted = Encoding.UTF8.GetBytes("deleted");
        var live = Encoding.UTF8.GetBytes("live");
        var hash = 3UL << 50; // Both keys share a ring hash: the index asks the store for them.
        using (var engine = new RocksDbEngine(path, FsyncMode.Always))
        {
            Assert.True(engine.Put(hash, deleted, new VersionedValue(new Core.Version(5, 1), null)));
            Assert.True(engine.Put(hash, live, new VersionedValue(new Core.Version(5, 1), null)));
            Assert.True(engine.Put(hash, live, new VersionedValue(new Core.Version(6, 1), [1])));
            Assert.Equal(1, engine.TombstoneCount);
        }
        using var reopened = new RocksDbEngine(path, FsyncMode.Always);
        Assert.Equal(1, reopened.TombstoneCount);
        Assert.Equal(1, reopened.BucketTombstones(AntiEntropy.BucketOf(hash)));
        Assert.True(reopened.RemoveIfVersion(hash, deleted, new Core.Version(5, 1)));
        Assert.Equal(0, reopened.TombstoneCount);
        Assert.Equal(0, reopened.BucketTombstones(AntiEntropy.BucketOf(hash)));
    }

    [Theory]
    [InlineData(FsyncMode.Always)]
    [InlineData(FsyncMode.Batch)]
    [InlineData(FsyncMode.None)]
    public void A_synced_compare_and_delete_survives_a_reopen(FsyncMode mode)
    {
        var path = Path.Combine(_root, "remove-" + mode);
        var key = Encoding.UTF8.GetBytes("purged");
        using (var engine = new RocksDbEngine(path, mode))
        {
            Assert.True(engine.Put(9, key, new VersionedValue(new Core.Version(5, 1), null)));
            engine.SyncPending();
            Assert.True(engine.RemoveIfVersion(9, key, new Core.Version(5, 1)));
            engine.SyncPending();
        }
        using var reopened = new RocksDbEngine(path, mode);
        Assert.Equal(0, reopened.Count);
        Assert.Null(reopened.Get(9, key));
    }

    /// <summary>
    /// Without fsync per batch the log is buffered in the process: a put reaches the files (what a
    /// killed process leaves behind, copied here while the engine is open) only once
    /// <see cref="RocksDbEngine.FlushWal"/> has run, which the host does before acknowledging.
    /// </summary>
    [Theory]
    [InlineData(FsyncMode.Batch)]
    [InlineData(FsyncMode.None)]
    public void A_put_reaches_the_files_a_crash_leaves_when_the_log_is_flushed_and_not_before(FsyncMode mode)
    {
        var path = Path.Combine(_root, "crash-" + mode);
        var before = Encoding.UTF8.GetBytes("flushed");
        var after = Encoding.UTF8.GetBytes("still-buffered");
        using var engine = new RocksDbEngine(path, mode);
        Assert.True(engine.Put(1, before, new VersionedValue(new Core.Version(1, 1), [1])));
        engine.FlushWal();
        Assert.True(engine.Put(2, after, new VersionedValue(new Core.Version(2, 1), [2])));
        Assert.Equal([2], engine.Get(2, after)?.Value); // Staged until the step ends, and read back from there.

        var crashed = CopyDirectory(path, path + "-crashed");
        using var recovered = new RocksDbEngine(crashed, mode);
        Assert.Equal([1], recovered.Get(1, before)?.Value);
        Assert.Null(recovered.Get(2, after));

        engine.FlushWal();
        var flushed = CopyDirectory(path, path + "-flushed");
        using var recoveredAgain = new RocksDbEngine(flushed, mode);
        Assert.Equal([2], recoveredAgain.Get(2, after)?.Value);
    }

    /// <summary>
    /// A crash in the middle of writing the log leaves a record cut short: the engine reopens with
    /// every whole record before it, cuts the file there, and goes on logging after them.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    public void A_record_cut_short_by_a_crash_is_dropped_and_the_records_before_it_are_kept(int cutBytes)
    {
        var path = Path.Combine(_root, "torn-" + cutBytes);
        var kept = Encoding.UTF8.GetBytes("kept");
        var torn = Encoding.UTF8.GetBytes("torn");
        using (var engine = new RocksDbEngine(path, FsyncMode.None))
        {
            Assert.True(engine.Put(1, kept, new VersionedValue(new Core.Version(1, 1), [1])));
            engine.FlushWal();
            Assert.True(engine.Put(2, torn, new VersionedValue(new Core.Version(2, 1), [2, 2, 2])));
            engine.FlushWal();
            var crashed = CopyDirectory(path, path + "-crashed");
            var log = Path.Combine(crashed, RocksDbEngine.LogFileName);
            using (var file = File.OpenWrite(log))
                file.SetLength(file.Length - cutBytes);
            using (var recovered = new RocksDbEngine(crashed, FsyncMode.None))
            {
                Assert.Equal(1, recovered.Count);
                Assert.Equal([1], recovered.Get(1, kept)?.Value);
                Assert.Null(recovered.Get(2, torn));
                Assert.True(recovered.Put(3, torn, new VersionedValue(new Core.Version(3, 1), [3])));
                recovered.FlushWal();
            }
            using var again = new RocksDbEngine(crashed, FsyncMode.None);
            Assert.Equal(2, again.Count);
            Assert.Equal([3], again.Get(3, torn)?.Value);
        }
    }

    /// <summary>A log left by fsync none or batch holds acknowledged writes: reopened with fsync always, they are ingested into RocksDB.</summary>
    [Fact]
    public void A_log_left_by_fsync_none_is_kept_when_the_directory_is_reopened_with_fsync_always()
    {
        var path = Path.Combine(_root, "mode-change");
        var key = Encoding.UTF8.GetBytes("logged");
        using (var engine = new RocksDbEngine(path, FsyncMode.None))
        {
            Assert.True(engine.Put(5, key, new VersionedValue(new Core.Version(5, 1), [5])));
            Assert.True(engine.Put(6, key, new VersionedValue(new Core.Version(6, 1), null)));
            engine.FlushWal();
            CopyDirectory(path, path + "-crashed");
        }
        using (var always = new RocksDbEngine(path + "-crashed", FsyncMode.Always))
        {
            Assert.False(File.Exists(Path.Combine(path + "-crashed", RocksDbEngine.LogFileName)));
            Assert.Equal([5], always.Get(5, key)?.Value);
            Assert.True(always.Get(6, key)?.IsTombstone);
            Assert.Equal(2, always.Count);
        }
        using var reopened = new RocksDbEngine(path + "-crashed", FsyncMode.None);
        Assert.Equal([5], reopened.Get(5, key)?.Value);
    }

    [Fact]
    public void A_full_log_becomes_a_table_when_keys_share_a_ring_hash_and_arrive_out_of_order()
    {
        // RocksDB takes a table only with its keys in strictly ascending order: keys that share a
        // hash sort by key after the hash, whatever order they were written in.
        var path = Path.Combine(_root, "shared-hash-table");
        byte[][] keys = [[9], [5, 5], [5], [1], [0xFF], []];
        using (var engine = new RocksDbEngine(path, FsyncMode.None, logBytesPerTable: 200))
        {
            for (var i = 0; i < keys.Length; i++)
            {
                Assert.True(engine.Put(42, keys[i], new VersionedValue(new Core.Version(10 + i, 1), [(byte)i])));
                Assert.True(engine.Put(7 - (ulong)i, [(byte)i], new VersionedValue(new Core.Version(1, 1), i == 2 ? null : [1])));
            }
            Assert.True(engine.RemoveIfVersion(42, [1], new Core.Version(13, 1)));
            engine.FlushWal();
            engine.AwaitTable();
            Assert.Equal(0, engine.LoggedBytes);
            Assert.Null(engine.Get(42, [1]));
            Assert.Equal(new byte[] { 0 }, engine.Get(42, [9])?.Value);
        }
        using var reopened = new RocksDbEngine(path, FsyncMode.None);
        Assert.Equal(0, reopened.LoggedBytes);
        Assert.Equal(2 * keys.Length - 1, reopened.Count);
        for (var i = 0; i < keys.Length; i++)
        {
            if (i != 3)
                Assert.Equal(new[] { (byte)i }, reopened.Get(42, keys[i])?.Value);
            Assert.Equal(i == 2, reopened.Get(7 - (ulong)i, [(byte)i])?.IsTombstone);
        }
        Assert.Null(reopened.Get(42, [1]));
    }

    /// <summary>
    /// While a full log's table is being written, the sealed log is read after the new one: gets,
    /// scans and drops see its records, a drop of one it holds is not undone when its table lands,
    /// and a crash in the middle leaves both logs, read back in order.
    /// </summary>
    [Fact]
    public void Records_of_a_log_whose_table_is_being_written_are_read_replaced_and_dropped_and_survive_a_crash()
    {
        var path = Path.Combine(_root, "sealed");
        using var gate = new ManualResetEventSlim(false);
        var kept = Encoding.UTF8.GetBytes("kept");
        var replaced = Encoding.UTF8.GetBytes("replaced");
        var dropped = Encoding.UTF8.GetBytes("dropped");
        var removed = Encoding.UTF8.GetBytes("removed");
        var engine = new RocksDbEngine(path, FsyncMode.None, logBytesPerTable: 200) { TableGate = gate };
        try
        {
            Assert.True(engine.Put(10, kept, new VersionedValue(new Core.Version(1, 1), [1])));
            Assert.True(engine.Put(20, replaced, new VersionedValue(new Core.Version(1, 1), [2])));
            Assert.True(engine.Put(30, dropped, new VersionedValue(new Core.Version(1, 1), [3])));
            Assert.True(engine.Put(40, removed, new VersionedValue(new Core.Version(1, 1), [4])));
            for (var i = 0; i < 4; i++)
                Assert.True(engine.Put(1000 + (ulong)i, [(byte)i], new VersionedValue(new Core.Version(1, 1), new byte[40])));
            engine.FlushWal(); // Past 200 bytes: sealed, its table held at the gate.
            Assert.True(File.Exists(Path.Combine(path, RocksDbEngine.SealedLogFileName)));
            Assert.True(engine.Put(20, replaced, new VersionedValue(new Core.Version(2, 1), [22])));
            Assert.Equal(1, engine.DropRange(new HashRange(29, 30)));
            Assert.True(engine.RemoveIfVersion(40, removed, new Core.Version(1, 1)));
            engine.FlushWal();
            AssertHeld(engine);

            var crashed = CopyDirectory(path, path + "-crashed");
            using (var recovered = new RocksDbEngine(crashed, FsyncMode.None))
                AssertHeld(recovered);
            Assert.False(File.Exists(Path.Combine(crashed, RocksDbEngine.SealedLogFileName)));

            gate.Set();
            engine.AwaitTable();
            Assert.False(File.Exists(Path.Combine(path, RocksDbEngine.SealedLogFileName)));
            AssertHeld(engine);
        }
        finally
        {
            gate.Set(); // A failed assertion must not leave Dispose waiting for the held table.
            engine.Dispose();
        }
        using var reopened = new RocksDbEngine(path, FsyncMode.None);
        AssertHeld(reopened);

        void AssertHeld(RocksDbEngine held)
        {
            Assert.Equal(6, held.Count);
            Assert.Equal([1], held.Get(10, kept)?.Value);
            Assert.Equal([22], held.Get(20, replaced)?.Value);
            Assert.Null(held.Get(30, dropped));
            Assert.Null(held.Get(40, removed));
            var scanned = new List<StoredEntry>();
            Assert.Null(held.Scan(new HashRange(0, 0), null, 100, 1 << 20, scanned));
            Assert.Equal([10UL, 20, 1000, 1001, 1002, 1003], scanned.Select(e => e.Hash));
            Assert.Equal(new Core.Version(2, 1), scanned[1].Value.Version);
        }
    }

    /// <summary>
    /// A failed write of the log while a sealed log's table is held: the step's records are taken
    /// back and the version index rebuilt from RocksDB and both logs. The sealed log's keys must
    /// keep their versions (puts decide "newer?" from them) and count, with nothing of them in
    /// RocksDB yet; once the disk has room again and the table is in, everything is there.
    /// </summary>
    [Fact]
    public void A_failed_log_write_while_a_table_is_held_keeps_the_sealed_logs_keys_in_the_index()
    {
        var mountPoint = Path.Combine(_root, "small-disk");
        Directory.CreateDirectory(mountPoint);
        var mounted = Run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mountPoint);
        if (mounted.ExitCode != 0)
            throw new Xunit.Sdk.XunitException($"this test mounts a tmpfs and needs root (CAP_SYS_ADMIN): mount exited {mounted.ExitCode}: {mounted.Output}");
        try
        {
            var path = Path.Combine(mountPoint, "db");
            var filler = Path.Combine(mountPoint, "filler");
            using var gate = new ManualResetEventSlim(false);
            var sealedKeys = new List<(ulong Hash, byte[] Key)>();
            var engine = new RocksDbEngine(path, FsyncMode.None, logBytesPerTable: 200) { TableGate = gate };
            try
            {
                for (var i = 0; i < 4; i++)
                {
                    var key = new[] { (byte)i };
                    sealedKeys.Add((100 + (ulong)i, key));
                    Assert.True(engine.Put(100 + (ulong)i, key, new VersionedValue(new Core.Version(5, 1), new byte[60])));
                }
                engine.FlushWal(); // Past 200 bytes: sealed, its table held at the gate.
                Assert.True(File.Exists(Path.Combine(path, RocksDbEngine.SealedLogFileName)));

                FillDisk(filler);
                Assert.True(engine.Put(500, [9], new VersionedValue(new Core.Version(1, 1), new byte[4096])));
                var failed = Assert.Throws<StorageException>(engine.FlushWal);
                Assert.Contains("write failed", failed.Message);
                AssertSealedHeld(engine);
                Assert.Null(engine.VersionOf(500, [9])); // Taken back: never acknowledged.

                File.Delete(filler);
                gate.Set();
                engine.AwaitTable();
                Assert.True(engine.Put(500, [9], new VersionedValue(new Core.Version(1, 1), [9])));
                engine.FlushWal();
                AssertSealedHeld(engine, extra: 1);
            }
            finally
            {
                gate.Set(); // A failed assertion must not leave Dispose waiting for the held table.
                engine.Dispose();
            }
            using var reopened = new RocksDbEngine(path, FsyncMode.None);
            AssertSealedHeld(reopened, extra: 1);
            Assert.Equal([9], reopened.Get(500, [9])?.Value);

            void AssertSealedHeld(RocksDbEngine held, int extra = 0)
            {
                Assert.Equal(sealedKeys.Count + extra, held.Count);
                foreach (var (hash, key) in sealedKeys)
                {
                    Assert.Equal(new Core.Version(5, 1), held.VersionOf(hash, key));
                    Assert.False(held.Put(hash, key, new VersionedValue(new Core.Version(4, 1), [0]))); // Older than held: refused.
                    Assert.Equal(60, held.Get(hash, key)?.Value?.Length);
                }
            }
        }
        finally
        {
            if (Run("umount", mountPoint).ExitCode != 0)
                Run("umount", "-l", mountPoint);
        }
    }

    /// <summary>Writes <paramref name="path"/> until the file system has no room left.</summary>
    private static void FillDisk(string path)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1);
        var block = new byte[64 * 1024];
        try
        {
            while (true)
                file.Write(block);
        }
        catch (IOException)
        {
        }
    }

    private static (int ExitCode, string Output) Run(string file, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
            start.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException("could not run " + file);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(30_000))
            throw new TimeoutException($"{file} did not exit within 30 s");
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private static string CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            if (Path.GetFileName(file) != "LOCK")
                File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
        return to;
    }

    /// <summary>
    /// A put decides "newer?" from the in-memory version index, not by reading RocksDB: the index
    /// must come back on reopen, keys that share a ring hash included.
    /// </summary>
    [Fact]
    public void The_versions_held_decide_puts_and_removes_after_a_reopen()
    {
        var path = Path.Combine(_root, "index");
        using (var engine = new RocksDbEngine(path, FsyncMode.None))
        {
            Assert.True(engine.Put(7, "a"u8, new VersionedValue(new Core.Version(5, 1), [1])));
            Assert.True(engine.Put(7, "b"u8, new VersionedValue(new Core.Version(3, 1), [2])));
            Assert.True(engine.Put(8, "c"u8, new VersionedValue(new Core.Version(2, 1), [3])));
            engine.Flush();
        }
        using var reopened = new RocksDbEngine(path, FsyncMode.None);
        Assert.Equal(3, reopened.Count);
        Assert.False(reopened.Put(8, "c"u8, new VersionedValue(new Core.Version(1, 1), [9])));
        Assert.False(reopened.Put(8, "c"u8, new VersionedValue(new Core.Version(2, 1), [9])));
        Assert.False(reopened.Put(7, "a"u8, new VersionedValue(new Core.Version(4, 1), [9])));
        Assert.True(reopened.Put(7, "b"u8, new VersionedValue(new Core.Version(4, 1), [4])));
        Assert.True(reopened.Put(9, "d"u8, new VersionedValue(new Core.Version(1, 1), [5])));
        Assert.False(reopened.RemoveIfVersion(8, "c"u8, new Core.Version(1, 1)));
        Assert.True(reopened.RemoveIfVersion(8, "c"u8, new Core.Version(2, 1)));
        Assert.Equal(3, reopened.Count);
        Assert.Equal([1], reopened.Get(7, "a"u8)?.Value);
        Assert.Equal([4], reopened.Get(7, "b"u8)?.Value);
        Assert.Null(reopened.Get(8, "c"u8));
    }

    [Fact]
    public void RocksDb_engine_is_named_rocksdb()
    {
        using var engine = CreateEngine();
        Assert.Equal("rocksdb", engine.Name);
    }
}
