using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary>Traces of <c>gtstore client</c> against clusters of real processes, checked line by line.</summary>
[Collection(ProcessesCollection.Name)]
public sealed partial class CliTraceTests(ITestOutputHelper output)
{
    // Seed, "Client": put() "sends a write request to forwarder, and then waits for reply of
    // completion"; get() "waits for the reply of completion with result". Seed, "Consistency":
    // "If multiple versions of results are retrieved, the latest version wins."
    [Fact(Timeout = 120_000)]
    public async Task One_node_with_one_replica_stores_overwrites_and_reports_a_missing_key()
    {
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "1", "--rep", "1");

        Assert.Equal("OK, server1", (await cluster.RunOkAsync("client", "--put", "k1", "--val", "v1")).Stdout.Trim());
        Assert.Equal("k1, v1, server1", (await cluster.RunOkAsync("client", "--get", "k1")).Stdout.Trim());

        Assert.Equal("OK, server1", (await cluster.RunOkAsync("client", "--put", "k1", "--val", "v2")).Stdout.Trim());
        Assert.Equal("k1, v2, server1", (await cluster.RunOkAsync("client", "--get", "k1")).Stdout.Trim());

        var missing = await cluster.RunAsync("client", "--get", "no-such-key");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("no-such-key", missing.Stderr, StringComparison.Ordinal);
        Assert.Equal("", missing.Stdout);
        cluster.Passed();
    }

    // Seed, "Replication": "Each key-value pair is stored in N Storage nodes." Seed, "Request
    // Processing": "The coordinator must be one node in the preference list" (so coordinators
    // differ by key). DESIGN.md "Membership and transfers": "each key is on exactly the N nodes
    // of its preference list".
    [Fact(Timeout = 180_000)]
    public async Task Five_nodes_with_three_replicas_keep_three_copies_of_every_key()
    {
        const int keys = 30;
        const int replicas = 3;
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "5", "--rep", "3");
        var members = TestCluster.Nodes(await cluster.StatusAsync()).Select(n => n["id"]!.GetValue<string>()).ToHashSet();
        Assert.Equal(5, members.Count);

        var coordinators = new HashSet<string>();
        for (var i = 0; i < keys; i++)
        {
            var put = await cluster.RunOkAsync("client", "--put", $"key-{i}", "--val", $"value-{i}");
            coordinators.Add(Coordinator(PutLine().Match(put.Stdout.Trim())));
        }
        for (var i = 0; i < keys; i++)
        {
            var get = await cluster.RunOkAsync("client", "--get", $"key-{i}");
            var match = GetLine().Match(get.Stdout.Trim());
            Assert.True(match.Success, $"unexpected get output: {get.Stdout}");
            Assert.Equal($"key-{i}", match.Groups["key"].Value);
            Assert.Equal($"value-{i}", match.Groups["value"].Value);
            coordinators.Add(match.Groups["server"].Value);
        }
        // Overwrite every third key (10 of 30) and read the new values back.
        for (var i = 0; i < keys; i += 3)
            await cluster.RunOkAsync("client", "--put", $"key-{i}", "--val", $"new-{i}");
        for (var i = 0; i < keys; i += 3)
        {
            var get = await cluster.RunOkAsync("client", "--get", $"key-{i}");
            Assert.Equal($"new-{i}", GetLine().Match(get.Stdout.Trim()).Groups["value"].Value);
        }

        output.WriteLine($"coordinators seen: {string.Join(", ", coordinators.Order())}");
        Assert.True(coordinators.Count >= 2, $"every request was coordinated by {string.Join(", ", coordinators)}");
        Assert.Subset(members, coordinators);

        // The W-th acknowledgement answers the client; the last replica's write may still be on its way.
        var settled = await cluster.WaitForStatusAsync(
            s => TestCluster.Settled(s, 5) && TestCluster.KeySum(s) == replicas * keys,
            $"5 nodes up holding {replicas} x {keys} = {replicas * keys} keys");
        Assert.Equal(replicas, settled["replication"]!.GetValue<int>());
        cluster.Passed();
    }

    // Seed, "Membership": "There must be at least N storage nodes running. Otherwise the
    // replication principle cannot be met, and no request will be accepted." DESIGN.md: "with
    // fewer than N member nodes the cluster accepts no request and says why."
    [Fact(Timeout = 150_000)]
    public async Task A_cluster_with_fewer_than_N_nodes_refuses_requests_until_a_node_joins()
    {
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "2", "--rep", "3");

        var refused = await cluster.RunAsync("client", "--put", "k", "--val", "v");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("2 of the 3", refused.Stderr, StringComparison.Ordinal);

        var added = await cluster.RunOkAsync("add-node");
        Assert.Matches(@"^server\d+ joined", added.Stdout.Trim());

        var put = await cluster.RunOkAsync("client", "--put", "k", "--val", "v");
        Assert.Matches(PutLine(), put.Stdout.Trim());
        Assert.Matches(@"^k, v, server\d+$", (await cluster.RunOkAsync("client", "--get", "k")).Stdout.Trim());
        await cluster.WaitForStatusAsync(s => TestCluster.Settled(s, 3) && TestCluster.KeySum(s) == 3, "3 nodes up holding 3 copies of k");
        cluster.Passed();
    }

    private static string Coordinator(Match put)
    {
        Assert.True(put.Success, "unexpected put output");
        return put.Groups["server"].Value;
    }

    [GeneratedRegex(@"^OK, (?<server>server\d+)$")]
    private static partial Regex PutLine();

    [GeneratedRegex(@"^(?<key>[^,]+), (?<value>[^,]*), (?<server>server\d+)$")]
    private static partial Regex GetLine();
}
