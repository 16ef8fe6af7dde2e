using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary>The seed's "Client Driver Application" as <c>gtstore demo</c> runs it on real processes.</summary>
[Collection(ProcessesCollection.Name)]
public sealed class DemoTests(ITestOutputHelper output)
{
    // Seed, "Client Driver Application / Test": "Start 2N storage nodes ... Start K clients, each
    // sending a put() request ... we replace 2N old storage nodes one by one with 2N new storage
    // nodes ... For each client, send a get() request with the same key it puts."
    [Fact(Timeout = 200_000)]
    public async Task Demo_replaces_every_node_and_loses_no_key()
    {
        var pid = 0;
        ProcessResult? result = null;
        try
        {
            result = await GtstoreProcess.RunAsync(output, ["demo"], TimeSpan.FromSeconds(150), started => pid = started);
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("keys lost: 0", result.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            // The demo stops its own cluster; if it was killed at the cap, stop what it left behind.
            if (pid != 0)
                await TestCluster.StopLeftoversAsync(output, "gtstore-demo-" + pid, result?.ExitCode == 0);
        }
    }
}
