using GTStore.Core;

namespace GTStore.Storage.Tests;

/// <summary>The storage contract over the in-memory engine.</summary>
public sealed class MemoryEngineContractTests : StorageEngineContractTests
{
    protected override IStorageEngine CreateEngine() => new MemoryEngine();

    [Fact]
    public void Memory_engine_is_named_memory()
    {
        using var engine = CreateEngine();
        Assert.Equal("memory", engine.Name);
    }
}
