using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary>
/// <c>gtstore bench</c> as a user runs it, small: each subcommand starts its own clusters of real
/// processes, prints its table, and writes its JSON (and chart) where <c>--out</c> says. The
/// numbers are not judged here (benchmarks are run on demand, not timed in tests); what is judged
/// is that the work was done: every operation counted, no errors, latencies in order, the ring's
/// balance within its target, a PNG that is a PNG.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed class BenchTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), "gtstore-bench-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_out))
            Directory.Delete(_out, recursive: true);
    }

    [Fact(Timeout = 180_000)]
    public async Task Throughput_runs_every_replica_count_and_writes_its_chart_and_json()
    {
        var result = await RunBenchAsync(["bench", "throughput", "--nodes", "3", "--replicas", "1,3", "--ops", "3000", "--clients", "2", "--fsync", "none", "--out", _out]);
        Assert.Contains("N=1 R=1 W=1", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("N=3 R=2 W=2", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("p99.9 µs", result.Stdout, StringComparison.Ordinal);

        var json = ReadJson("throughput.json");
        Assert.Equal("none", json["fsync"]!.GetValue<string>());
        var rows = json["results"]!.AsArray();
        Assert.Equal([1, 3], rows.Select(r => r!["replicas"]!.GetValue<int>()));
        foreach (var row in rows)
        {
            Assert.Equal(3000, row!["operations"]!.GetValue<long>());
            Assert.Equal(0, row["errors"]!.GetValue<long>());
            Assert.True(row["opsPerSecond"]!.GetValue<double>() > 0, row.ToJsonString());
            var (p50, p99, p999) = (row["p50Micros"]!.GetValue<long>(), row["p99Micros"]!.GetValue<long>(), row["p999Micros"]!.GetValue<long>());
            Assert.True(0 < p50 && p50 <= p99 && p99 <= p999, row.ToJsonString());
        }
        AssertPng("throughput.png");
    }

    [Fact(Timeout = 180_000)]
    public async Task Balance_counts_every_key_on_some_node_within_the_target()
    {
        const int Keys = 20_000;
        var result = await RunBenchAsync(["bench", "balance", "--nodes", "7", "--keys", Keys.ToString(System.Globalization.CultureInfo.InvariantCulture), "--fsync", "none", "--out", _out]);
        Assert.Contains("max/mean", result.Stdout, StringComparison.Ordinal);

        var json = ReadJson("balance.json");
        var perNode = json["perNode"]!.AsArray().Select(n => n!["keys"]!.GetValue<long>()).ToList();
        Assert.Equal(7, perNode.Count);
        Assert.Equal(Keys, perNode.Sum()); // N=1: each key on exactly one node.
        var maxOverMean = json["maxOverMean"]!.GetValue<double>();
        Assert.Equal(perNode.Max() / perNode.Average(), maxOverMean, 6);
        Assert.True(maxOverMean <= 1.10, $"max/mean {maxOverMean:0.000} with the default tokens; the target is 1.10 or less");
        AssertPng("balance.png");
    }

    [Fact(Timeout = 180_000)]
    public async Task Ycsb_b_loads_its_records_then_reads_and_updates_them()
    {
        var result = await RunBenchAsync(["bench", "ycsb", "--workload", "B", "--distribution", "zipfian", "--records", "2000", "--duration", "2", "--nodes", "3", "--clients", "2", "--fsync", "none", "--out", _out]);
        var reads = CountRow(result.Stdout, "read");
        var updates = CountRow(result.Stdout, "update");

        var json = ReadJson("ycsb-b-zipfian.json");
        Assert.Equal("B", json["workload"]!.GetValue<string>());
        Assert.Equal(0, json["errors"]!.GetValue<long>());
        var operations = json["operations"]!.GetValue<long>();
        Assert.Equal(operations, reads + updates);
        // Workload B is 95% reads, 5% updates: with thousands of operations, well inside 1%..15%.
        Assert.InRange(updates / (double)operations, 0.01, 0.15);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_bad_flag_is_refused_by_name_before_any_cluster_starts()
    {
        var result = await GtstoreProcess.RunAsync(output, ["bench", "throughput", "--fsync", "sometimes", "--out", _out]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--fsync must be always or batch or none, got 'sometimes'", result.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_out), "nothing should have run");
    }

    /// <summary>The count in the operation table's row for <paramref name="operation"/>.</summary>
    private static long CountRow(string stdout, string operation)
    {
        var row = System.Text.RegularExpressions.Regex.Match(stdout, $@"│ {operation}\s+│ ([0-9]+)\s+│");
        Assert.True(row.Success, $"no '{operation}' row in:\n{stdout}");
        return long.Parse(row.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<ProcessResult> RunBenchAsync(string[] args)
    {
        var pid = 0;
        ProcessResult? result = null;
        try
        {
            result = await GtstoreProcess.RunAsync(output, args, TimeSpan.FromSeconds(150), started => pid = started);
            Assert.True(result.ExitCode == 0, result.ToString());
            return result;
        }
        finally
        {
            // The bench stops its clusters; if it was killed at the cap, stop what it left behind.
            if (pid != 0)
                await TestCluster.StopLeftoversAsync(output, $"gtstore-bench-{pid}-*", result?.ExitCode == 0);
        }
    }

    private JsonNode ReadJson(string name) => JsonNode.Parse(File.ReadAllText(Path.Combine(_out, name)))!;

    private void AssertPng(string name)
    {
        var bytes = File.ReadAllBytes(Path.Combine(_out, name));
        Assert.True(bytes.Length > 1000, $"{name} is {bytes.Length} bytes");
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
    }
}
