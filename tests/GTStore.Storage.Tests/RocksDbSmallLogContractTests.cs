using GTStore.Core;

namespace GTStore.Storage.Tests;

/// <summary>
/// The storage contract over RocksDB whose write log becomes a table every few hundred bytes, so
/// that every property also runs through log records replacing and hiding table entries, scans and
/// range drops that merge both, and ingestion. The engine is driven as the node host drives it:
/// the log is handed to the OS (and a full one made a table) after every write.
/// </summary>
public sealed class RocksDbSmallLogContractTests : StorageEngineContractTests, IDisposable
{
    /// <summary>A table every two or three records of the contract's small values.</summary>
    private const int LogBytesPerTable = 300;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "gtstore-rocks-log-" + Guid.NewGuid().ToString("N"));
    private int _next;

    protected override int PropertyIterations => 25;

    protected override IStorageEngine CreateEngine() =>
        new SteppedEngine(new RocksDbEngine(Path.Combine(_root, (_next++).ToString(System.Globalization.CultureInfo.InvariantCulture)), FsyncMode.None,
            logBytesPerTable: LogBytesPerTable));

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    /// <summary>Calls <see cref="RocksDbEngine.FlushWal"/> after each write, as the host does after each step.</summary>
    private sealed class SteppedEngine(RocksDbEngine inner) : IStorageEngine
    {
        public string Name => inner.Name;

        public long Count => inner.Count;

        public VersionedValue? Get(ulong hash, ReadOnlySpan<byte> key) => inner.Get(hash, key);

        public Core.Version? VersionOf(ulong hash, ReadOnlySpan<byte> key) => inner.VersionOf(hash, key);

        public ulong? BucketDigest(int bucket) => inner.BucketDigest(bucket);

        public int? BucketTombstones(int bucket) => inner.BucketTombstones(bucket);

        public long? TombstoneCount => inner.TombstoneCount;

        public bool Put(ulong hash, ReadOnlySpan<byte> key, VersionedValue value) => Stepped(inner.Put(hash, key, value));

        public ScanCursor? Scan(HashRange range, ScanCursor? after, int maxEntries, int maxBytes, List<StoredEntry> into) =>
            inner.Scan(range, after, maxEntries, maxBytes, into);

        public bool RemoveIfVersion(ulong hash, ReadOnlySpan<byte> key, Core.Version version) => Stepped(inner.RemoveIfVersion(hash, key, version));

        public long DropRange(HashRange range) => Stepped(inner.DropRange(range));

        public void Flush() => inner.Flush();

        public void Dispose() => inner.Dispose();

        private T Stepped<T>(T result)
        {
            inner.FlushWal();
            return result;
        }
    }
}
