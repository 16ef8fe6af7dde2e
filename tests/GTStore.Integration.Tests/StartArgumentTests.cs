using GTStore.Node.Tests;
using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary><c>gtstore start</c> validates its flags before it starts anything.</summary>
[Collection(ProcessesCollection.Name)]
public sealed class StartArgumentTests(ITestOutputHelper output)
{
    /// <summary><c>gtstore start</c> with <paramref name="args"/> exits 2, its error names <paramref name="expected"/>, and no cluster was started.</summary>
    private async Task StartIsRefusedAsync(string expected, params string[] args)
    {
        await using var cluster = TestCluster.Create(output);
        var result = await cluster.RunAsync(["start", .. args]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(expected, result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(cluster.Dir, "cluster.json")), "a cluster was started despite the bad flag");
        cluster.Passed();
    }

    // STYLE.md "Code": "Configuration is validated before anything starts ... naming the flag and
    // the allowed range ("--rep must be 1..7, got 0"). Usage errors exit 2."
    [Fact(Timeout = 60_000)]
    public Task Start_with_zero_replicas_exits_2_naming_the_rep_flag()
        => StartIsRefusedAsync("--rep", "--nodes", "1", "--rep", "0");

    // STYLE.md "Code": usage errors name the flag and the allowed values, and exit 2.
    [Fact(Timeout = 60_000)]
    public Task Start_with_an_unknown_transport_exits_2_naming_the_allowed_transports()
        => StartIsRefusedAsync("uds or tcp", "--nodes", "1", "--rep", "1", "--transport", "foo");

    [Fact(Timeout = 60_000)]
    public Task Start_with_a_negative_value_cache_exits_2_naming_the_flag_and_its_range()
        => StartIsRefusedAsync("--value-cache-mb must be 0..", "--nodes", "1", "--rep", "1", "--value-cache-mb", "-1");

    [Fact(Timeout = 60_000)]
    public Task Start_with_a_value_cache_over_1_GiB_exits_2_naming_the_limit()
        => StartIsRefusedAsync("--value-cache-mb must be 0..1024, got 1025", "--nodes", "1", "--rep", "1", "--value-cache-mb", "1025");

    [Fact(Timeout = 60_000)]
    public Task Start_with_an_unknown_scheduling_policy_exits_2_naming_the_allowed_ones()
        => StartIsRefusedAsync("--scheduling must be batch or normal, got 'fifo'", "--nodes", "1", "--rep", "1", "--scheduling", "fifo");

    // Node processes run every thread under SCHED_BATCH by default (docs/ARCHITECTURE.md,
    // "Performance"), and under the kernel's default with --scheduling normal; the manager is left
    // alone. Read from each thread's /proc stat (field 41, the policy: 0 SCHED_OTHER, 3 SCHED_BATCH).
    [Theory(Timeout = 120_000)]
    [InlineData(null, 3)]
    [InlineData("normal", 0)]
    public async Task Every_thread_of_a_node_runs_under_the_scheduling_policy_asked_for(string? scheduling, int expectedPolicy)
    {
        string[] args = scheduling is null ? ["--nodes", "1", "--rep", "1"] : ["--nodes", "1", "--rep", "1", "--scheduling", scheduling];
        await using var cluster = await TestCluster.StartAsync(output, args);
        var pid = TestCluster.Nodes(await cluster.StatusAsync()).Single()["pid"]!.GetValue<int>();
        var policies = ThreadPolicies(pid);
        Assert.True(policies.Count > 3, $"expected the node's threads, got {policies.Count}");
        Assert.All(policies, p => Assert.True(p.Policy == expectedPolicy, $"{p.Thread} runs under policy {p.Policy}, expected {expectedPolicy}"));
        cluster.Passed();
    }

    private static List<(string Thread, int Policy)> ThreadPolicies(int pid)
    {
        var found = new List<(string, int)>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(task, "stat"));
            }
            catch (IOException)
            {
                continue; // A thread that exited meanwhile.
            }
            // "tid (comm) state ...": fields after the command name, which may hold spaces; the
            // policy is field 41, the 39th after it.
            var nameEnd = stat.LastIndexOf(')');
            var fields = stat[(nameEnd + 2)..].Split(' ');
            found.Add((stat[..(nameEnd + 1)], int.Parse(fields[38], System.Globalization.CultureInfo.InvariantCulture)));
        }
        return found;
    }

    // --value-cache-mb reaches the node processes, and a node without a value cache serves every
    // read from RocksDB, overwrites included.
    [Fact(Timeout = 120_000)]
    public async Task Nodes_started_without_a_value_cache_get_the_flag_and_serve_reads()
    {
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "1", "--rep", "1", "--value-cache-mb", "0");
        var pid = TestCluster.Nodes(await cluster.StatusAsync()).Single()["pid"]!.GetValue<int>();
        var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
        Assert.Equal("0", args[Array.IndexOf(args, "--value-cache-mb") + 1]);

        await using var client = await GTStore.Client.GTStoreClient.InitAsync(new GTStore.Client.ClientOptions(cluster.ManagerAddress));
        await client.PutAsync("k"u8.ToArray(), "one"u8.ToArray());
        Assert.Equal("one"u8.ToArray(), (await client.GetAsync("k"u8.ToArray())).Value);
        await client.PutAsync("k"u8.ToArray(), "two"u8.ToArray());
        Assert.Equal("two"u8.ToArray(), (await client.GetAsync("k"u8.ToArray())).Value);
        var node = TestCluster.Nodes(await cluster.StatusAsync()).Single();
        Assert.Equal((0L, 2L), (node["valueCacheHits"]!.GetValue<long>(), node["valueCacheMisses"]!.GetValue<long>()));
        cluster.Passed();
    }

    // With the default cache, a key read twice is searched for once: status --json and INFO
    // gtstore (through redis-cli) count the miss and the hit.
    [RedisToolFact("redis-cli", Timeout = 120_000)]
    public async Task A_key_read_twice_is_one_value_cache_miss_then_a_hit_in_status_and_info()
    {
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "1", "--rep", "1");
        var port = TestCluster.Nodes(await cluster.StatusAsync()).Single()["resp"]!.GetValue<string>().Split(':')[1];
        Assert.Equal("OK", (await RedisTools.RunAsync("redis-cli", ["-p", port, "set", "k", "v"])).Trim());
        for (var i = 0; i < 2; i++)
            Assert.Equal("v", (await RedisTools.RunAsync("redis-cli", ["-p", port, "get", "k"])).Trim());

        var node = TestCluster.Nodes(await cluster.StatusAsync()).Single();
        Assert.Equal((1L, 1L), (node["valueCacheHits"]!.GetValue<long>(), node["valueCacheMisses"]!.GetValue<long>()));
        var info = await RedisTools.RunAsync("redis-cli", ["-p", port, "info", "gtstore"]);
        Assert.Contains("value_cache_hits:1\r\n", info.ReplaceLineEndings("\r\n"));
        Assert.Contains("value_cache_misses:1\r\n", info.ReplaceLineEndings("\r\n"));
        cluster.Passed();
    }

    // DESIGN.md "Processes": start "starts a local cluster ... under a cluster directory"; a
    // second start on a directory whose cluster still runs must not start a second manager over it.
    [Fact(Timeout = 120_000)]
    public async Task Start_refuses_a_directory_whose_cluster_still_runs()
    {
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "1", "--rep", "1");
        var before = await cluster.StatusAsync();

        var again = await cluster.RunAsync("start", "--nodes", "1", "--rep", "1");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("still running", again.Stderr, StringComparison.Ordinal);

        var after = await cluster.StatusAsync();
        Assert.Equal(before["manager"]!["pid"]!.GetValue<int>(), after["manager"]!["pid"]!.GetValue<int>());
        Assert.True(TestCluster.Settled(after, 1), $"the running cluster changed: {after.ToJsonString()}");
        cluster.Passed();
    }

    // A node directory written before the data format was recorded (keys placed by another hash)
    // is refused, and the CLI reports the node's own error at once rather than timing out.
    [Fact(Timeout = 120_000)]
    public async Task Add_node_over_data_of_an_earlier_format_fails_at_once_with_the_nodes_error()
    {
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "1", "--rep", "1");
        var next = Path.Combine(cluster.Dir, "nodes", "2");
        Directory.CreateDirectory(Path.Combine(next, "db"));

        var added = await cluster.RunAsync("add-node");
        Assert.Equal(1, added.ExitCode);
        Assert.Contains("exited", added.Stderr, StringComparison.Ordinal);
        Assert.Contains("no FORMAT file", added.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("timed out", added.Stderr, StringComparison.Ordinal);
        Assert.True(TestCluster.Settled(await cluster.StatusAsync(), 1), "the running cluster changed");
        cluster.Passed();
    }
}
