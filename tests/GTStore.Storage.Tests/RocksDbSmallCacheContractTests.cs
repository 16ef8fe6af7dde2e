using GTStore.Core;

namespace GTStore.Storage.Tests;

/// <summary>The storage contract over RocksDB with a value cache of the given budget, each engine in its own directory.</summary>
public abstract class RocksDbCacheBudgetContractTests(long cacheBytes) : StorageEngineContractTests, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "gtstore-rocks-cache-" + Guid.NewGuid().ToString("N"));
    private int _next;

    protected override int PropertyIterations => 25;

    protected override IStorageEngine CreateEngine() =>
        new RocksDbEngine(Path.Combine(_root, (_next++).ToString(System.Globalization.CultureInfo.InvariantCulture)), FsyncMode.None, cacheBytes);

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// A value cache of about a dozen records of 16 bytes of key and value (576 bytes, records up to 144), so that every property
/// also runs through evictions, and through reads that miss the cache and fill it
/// (RocksDbEngine.Get: "from the value cache when the key was read lately (a put refreshes its entry)
/// ... else from RocksDB, and cached").
/// </summary>
public sealed class RocksDbSmallCacheContractTests() : RocksDbCacheBudgetContractTests(12 * (ValueCache.RecordHeaderBytes + 16));

/// <summary>No value cache at all (<c>--value-cache-mb 0</c>).</summary>
public sealed class RocksDbNoCacheContractTests() : RocksDbCacheBudgetContractTests(0);
