using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using GTStore.Client;
using GTStore.Core;
using Spectre.Console;

namespace GTStore.Cli.Bench;

/// <summary>Settings shared by the bench commands.</summary>
public sealed record BenchSettings(int Nodes, int Clients, int Pipeline, int ValueBytes, string Engine, string Fsync, string OutputDirectory);

/// <summary>
/// <c>gtstore bench</c>: fresh local clusters of real processes driven through the client library,
/// with progress bars, a summary table, a JSON file and a PNG chart per run.
/// </summary>
public static class BenchCommands
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>Mixed reads and writes on a fresh cluster per replication factor.</summary>
    public static async Task<int> ThroughputAsync(BenchSettings s, IReadOnlyList<int> replicas, long ops, double readRatio)
    {
        var rows = new List<(int N, RunResult Result)>();
        foreach (var n in replicas)
        {
            var config = Majority(n);
            var result = await WithClusterAsync(s, config, async clients =>
            {
                var records = Math.Min(ops, 10_000);
                await ProgressAsync($"N={n}: loading {records} keys", records, p => LoadRunner.LoadAsync(clients, records, Value(s), s.Pipeline, p)).ConfigureAwait(false);
                return await ProgressAsync($"N={n}: {ops} ops, {readRatio:P0} reads", ops, p =>
                    LoadRunner.RunAsync(clients, new Workload("mixed", readRatio), KeyChooser.Create("uniform", records), Value(s), s.Pipeline, ops, null, n, p)).ConfigureAwait(false);
            }).ConfigureAwait(false);
            rows.Add((n, result));
        }

        var table = LatencyTable("N (replicas)");
        foreach (var (n, r) in rows)
            AddLatencyRow(table, $"N={n} R={Majority(n).ReadQuorum} W={Majority(n).WriteQuorum}", r);
        AnsiConsole.Write(table);

        Directory.CreateDirectory(s.OutputDirectory);
        var png = Path.Combine(s.OutputDirectory, "throughput.png");
        Chart(png, $"GTStore throughput, {s.Nodes} nodes, {readRatio:P0} reads, {s.Clients}x{s.Pipeline} in flight",
            "ops/s", rows.Select(r => $"N={r.N}").ToArray(), rows.Select(r => r.Result.OpsPerSecond).ToArray());
        var json = Path.Combine(s.OutputDirectory, "throughput.json");
        WriteJson(json, new JsonObject
        {
            ["benchmark"] = "throughput",
            ["nodes"] = s.Nodes,
            ["clients"] = s.Clients,
            ["pipeline"] = s.Pipeline,
            ["valueBytes"] = s.ValueBytes,
            ["engine"] = s.Engine,
            ["fsync"] = s.Fsync,
            ["operations"] = ops,
            ["readRatio"] = readRatio,
            ["results"] = new JsonArray(rows.Select(r => (JsonNode)ResultJson(r.Result, new JsonObject { ["replicas"] = r.N })).ToArray()),
        });
        AnsiConsole.MarkupLine($"chart: {Markup.Escape(png)}   results: {Markup.Escape(json)}");
        return rows.Any(r => r.Result.Errors > 0) ? 1 : 0;
    }

    /// <summary>Keys per node after writing <paramref name="keys"/> keys: the max/mean balance of the ring.</summary>
    public static async Task<int> BalanceAsync(BenchSettings s, long keys, int replicas, int tokens)
    {
        var config = Majority(replicas) with { TokensPerNode = tokens };
        List<(string Node, long Keys)> perNode = [];
        await WithClusterAsync(s, config, async (clients, cluster) =>
        {
            await ProgressAsync($"writing {keys} keys", keys, p => LoadRunner.LoadAsync(clients, keys, Value(s), s.Pipeline, p)).ConfigureAwait(false);
            var file = cluster.Directory.Require();
            var views = await Admin.NodesAsync(await Admin.StatusAsync(file.ManagerAddress).ConfigureAwait(false)).ConfigureAwait(false);
            perNode = views.Select(v => (v.Member.Node.ToString(), v.Stats?.KeyCount ?? 0)).ToList();
            return 0;
        }).ConfigureAwait(false);

        var mean = perNode.Average(p => (double)p.Keys);
        var max = perNode.Max(p => p.Keys);
        var ratio = max / mean;
        var table = new Table().AddColumns("node", "keys", "share of mean");
        foreach (var (node, count) in perNode)
            table.AddRow(node, count.ToString(Invariant), (count / mean).ToString("0.000", Invariant));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"max/mean = [bold]{ratio:0.000}[/] ({s.Nodes} nodes, {tokens} tokens each, N={replicas}, {keys} keys); target 1.10 or less");

        Directory.CreateDirectory(s.OutputDirectory);
        var png = Path.Combine(s.OutputDirectory, "balance.png");
        Chart(png, $"Keys per node: {s.Nodes} nodes, {tokens} tokens each, N={replicas}, max/mean {ratio:0.000}",
            "keys", perNode.Select(p => p.Node).ToArray(), perNode.Select(p => (double)p.Keys).ToArray());
        var json = Path.Combine(s.OutputDirectory, "balance.json");
        WriteJson(json, new JsonObject
        {
            ["benchmark"] = "balance",
            ["nodes"] = s.Nodes,
            ["tokensPerNode"] = tokens,
            ["replicas"] = replicas,
            ["keys"] = keys,
            ["maxOverMean"] = ratio,
            ["perNode"] = new JsonArray(perNode.Select(p => (JsonNode)new JsonObject { ["node"] = p.Node, ["keys"] = p.Keys }).ToArray()),
        });
        AnsiConsole.MarkupLine($"chart: {Markup.Escape(png)}   results: {Markup.Escape(json)}");
        return 0;
    }

    /// <summary>A YCSB core workload: load the records, then run for a duration.</summary>
    public static async Task<int> YcsbAsync(BenchSettings s, string letter, string distribution, long records, TimeSpan duration, int replicas)
    {
        var workload = Workload.Ycsb(letter);
        var config = Majority(replicas);
        var result = await WithClusterAsync(s, config, async clients =>
        {
            await ProgressAsync($"loading {records} records", records, p => LoadRunner.LoadAsync(clients, records, Value(s), s.Pipeline, p)).ConfigureAwait(false);
            AnsiConsole.MarkupLine($"running {Markup.Escape(workload.Name)}, {distribution} keys, for {duration.TotalSeconds:0} s");
            return await LoadRunner.RunAsync(clients, workload, KeyChooser.Create(distribution, records), Value(s), s.Pipeline, null, duration, 1, _ => { }).ConfigureAwait(false);
        }).ConfigureAwait(false);

        var table = LatencyTable("workload");
        AddLatencyRow(table, $"{letter.ToUpperInvariant()} {distribution}", result);
        AnsiConsole.Write(table);
        var latency = new Table().AddColumns("operation", "count", "p50 µs", "p99 µs", "p99.9 µs");
        foreach (var (name, h) in new[] { ("read", result.Reads), ("update", result.Writes) })
        {
            if (h.TotalCount > 0)
                latency.AddRow(name, h.TotalCount.ToString(Invariant), P(h, 50), P(h, 99), P(h, 99.9));
        }
        AnsiConsole.Write(latency);
        Directory.CreateDirectory(s.OutputDirectory);
        var json = Path.Combine(s.OutputDirectory, $"ycsb-{letter.ToLowerInvariant()}-{distribution}.json");
        WriteJson(json, ResultJson(result, new JsonObject
        {
            ["benchmark"] = "ycsb",
            ["workload"] = letter.ToUpperInvariant(),
            ["distribution"] = distribution,
            ["records"] = records,
            ["nodes"] = s.Nodes,
            ["replicas"] = replicas,
            ["clients"] = s.Clients,
            ["pipeline"] = s.Pipeline,
            ["valueBytes"] = s.ValueBytes,
            ["engine"] = s.Engine,
            ["fsync"] = s.Fsync,
        }));
        AnsiConsole.MarkupLine($"results: {Markup.Escape(json)}");
        return result.Errors > 0 ? 1 : 0;
    }

    private static ClusterConfig Majority(int n) => new() { ReplicationFactor = n, ReadQuorum = n / 2 + 1, WriteQuorum = n / 2 + 1 };

    private static byte[] Value(BenchSettings s) => Enumerable.Repeat((byte)'x', s.ValueBytes).ToArray();

    private static Task<T> WithClusterAsync<T>(BenchSettings s, ClusterConfig config, Func<IReadOnlyList<GTStoreClient>, Task<T>> run) =>
        WithClusterAsync(s, config, (clients, _) => run(clients));

    /// <summary>A fresh cluster in a temporary directory, the clients, and cleanup whatever happens.</summary>
    private static async Task<T> WithClusterAsync<T>(BenchSettings s, ClusterConfig config, Func<IReadOnlyList<GTStoreClient>, Cluster, Task<T>> run)
    {
        var root = Path.Combine(Path.GetTempPath(), $"gtstore-bench-{Environment.ProcessId}-{config.ReplicationFactor}");
        var cluster = new Cluster(new ClusterDirectory(root));
        var clients = new List<GTStoreClient>();
        try
        {
            AnsiConsole.MarkupLine($"starting {s.Nodes} nodes, N={config.ReplicationFactor} R={config.ReadQuorum} W={config.WriteQuorum}, engine {s.Engine}, fsync {s.Fsync}");
            var file = await cluster.StartAsync(s.Nodes, config, "uds", s.Engine, s.Fsync).ConfigureAwait(false);
            for (var i = 0; i < s.Clients; i++)
                clients.Add(await GTStoreClient.InitAsync(new ClientOptions(file.ManagerAddress)).ConfigureAwait(false));
            return await run(clients, cluster).ConfigureAwait(false);
        }
        finally
        {
            foreach (var c in clients)
                await c.DisposeAsync().ConfigureAwait(false);
            if (cluster.Directory.Read() is not null)
                await cluster.StopAsync().ConfigureAwait(false);
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<T> ProgressAsync<T>(string description, long total, Func<Action<long>, Task<T>> work)
    {
        T result = default!;
        await AnsiConsole.Progress().AutoClear(false).StartAsync(async ctx =>
        {
            var task = ctx.AddTask(Markup.Escape(description), maxValue: total);
            result = await work(done => task.Value = done).ConfigureAwait(false);
            task.Value = total;
        }).ConfigureAwait(false);
        return result;
    }

    private static Task ProgressAsync(string description, long total, Func<Action<long>, Task> work) =>
        ProgressAsync<int>(description, total, async p =>
        {
            await work(p).ConfigureAwait(false);
            return 0;
        });

    private static Table LatencyTable(string first) =>
        new Table().AddColumns(first, "ops", "ops/s", "p50 µs", "p99 µs", "p99.9 µs", "errors");

    private static void AddLatencyRow(Table table, string label, RunResult r)
    {
        var all = r.All();
        table.AddRow(label, r.Operations.ToString(Invariant), r.OpsPerSecond.ToString("0", Invariant), P(all, 50), P(all, 99), P(all, 99.9),
            r.Errors.ToString(Invariant));
    }

    private static string P(HdrHistogram.HistogramBase h, double percentile) =>
        h.TotalCount == 0 ? "-" : h.GetValueAtPercentile(percentile).ToString(Invariant);

    private static JsonObject ResultJson(RunResult r, JsonObject into)
    {
        var all = r.All();
        into["operations"] = r.Operations;
        into["errors"] = r.Errors;
        into["seconds"] = r.Elapsed.TotalSeconds;
        into["opsPerSecond"] = r.OpsPerSecond;
        into["p50Micros"] = all.TotalCount == 0 ? null : all.GetValueAtPercentile(50);
        into["p99Micros"] = all.TotalCount == 0 ? null : all.GetValueAtPercentile(99);
        into["p999Micros"] = all.TotalCount == 0 ? null : all.GetValueAtPercentile(99.9);
        return into;
    }

    private static void WriteJson(string path, JsonObject json) =>
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    private static void Chart(string path, string title, string label, string[] names, double[] values)
    {
        var plot = new ScottPlot.Plot();
        plot.Add.Bars(values);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, names.Length).Select(i => (double)i).ToArray(), names);
        plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        plot.YLabel(label);
        plot.SavePng(path, 900, 500);
    }
}
