namespace GTStore.Core.Tests;

/// <summary>
/// DESIGN.md Layers: "Core is deterministic and does no I/O: no sockets, files, DateTime.Now,
/// Random.Shared, Task.Delay, threads." STYLE.md: "One test can assert that Core references no I/O
/// assembly". Types that live in System.Private.CoreLib (File, Thread) are caught at build time by
/// BannedSymbols.txt instead; this test catches a new dependency on an I/O library.
/// </summary>
public sealed class CoreReferencesTests
{
    private static readonly string[] BannedPrefixes =
    [
        "System.Net",                    // sockets, HTTP, DNS
        "System.IO.Pipelines",           // the transport's byte pipes
        "System.IO.FileSystem",          // file system facades
        "System.IO.Pipes",
        "System.IO.MemoryMappedFiles",
        "System.Console",
        "System.Diagnostics.Process",
        "System.Threading.Thread",       // System.Threading.Thread / ThreadPool facades
        "Microsoft.Extensions.Logging",
        "Microsoft.Extensions.Hosting",
        "RocksDb",
        "GTStore.Transport",
        "GTStore.Storage",
        "GTStore.Protocol",
    ];

    [Fact]
    public void Core_references_no_io_assembly()
    {
        var referenced = typeof(Ring).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        var banned = referenced.Where(name => BannedPrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal))).ToList();
        Assert.True(banned.Count == 0, $"GTStore.Core references {string.Join(", ", banned)} (all: {string.Join(", ", referenced)})");
    }

    [Fact]
    public void Core_references_only_the_base_library_collections_and_hashing()
    {
        // Measured when this test was written: System.Runtime, System.Collections, System.Linq,
        // System.Collections.Immutable, System.IO.Hashing. A new entry is a design decision: add it
        // here only if it does no I/O.
        string[] allowed =
        [
            "System.Runtime", "System.Collections", "System.Linq", "System.Collections.Immutable",
            "System.IO.Hashing", "System.Memory", "System.Runtime.Intrinsics", "System.Numerics.Vectors",
            "System.Collections.Concurrent", "System.Runtime.InteropServices",
        ];
        var unexpected = typeof(Ring).Assembly.GetReferencedAssemblies().Select(a => a.Name!).Except(allowed).ToList();
        Assert.True(unexpected.Count == 0, $"GTStore.Core gained references: {string.Join(", ", unexpected)}");
    }
}
