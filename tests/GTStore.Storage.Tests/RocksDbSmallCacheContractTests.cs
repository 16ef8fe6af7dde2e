using GTStore.Core;

namespace GTStore.Storage.Tests;

/// <summary>
/// The storage contract over RocksDB with a value cache of a few entries, so that every property
/// also runs through evictions, and through reads that miss the cache and fill it
/// (RocksDbEngine.Get: "from the value cache when the key was written or read lately ... else from
/// RocksDB, and cached").
/// </summary>
public sealed class RocksDbSmallCacheContractTests : StorageEngineContractTests, IDisposable
{
    /// <summary>Room for about four entries of the generated keys and values.</summary>
    private const long CacheBytes = 4 * (ValueCacheEntryBytes + 16);

    private const long ValueCacheEntryBytes = 128;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "gtstore-rocks-cache-" + Guid.NewGuid().ToString("N"));
    private int _next;

    protected override int PropertyIterations => 25;

    protected override IStorageEngine CreateEngine() =>
        new RocksDbEngine(Path.Combine(_root, (_next++).ToString(System.Globalization.CultureInfo.InvariantCulture)), FsyncMode.None, CacheBytes);

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }
}

/// <summary>The storage contract over RocksDB with no value cache at all (<c>--value-cache-mb 0</c>).</summary>
public sealed class RocksDbNoCacheContractTests : StorageEngineContractTests, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "gtstore-rocks-nocache-" + Guid.NewGuid().ToString("N"));
    private int _next;

    protected override int PropertyIterations => 10;

    protected override IStorageEngine CreateEngine() =>
        new RocksDbEngine(Path.Combine(_root, (_next++).ToString(System.Globalization.CultureInfo.InvariantCulture)), FsyncMode.None, valueCacheBytes: 0);

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }
}
