using System.CommandLine;
using GTStore.Cli.Bench;

namespace GTStore.Cli;

/// <summary>The <c>bench</c> command tree: flags and validation; the work is in <see cref="BenchCommands"/>.</summary>
public static class BenchCommand
{
    private sealed class Shared
    {
        public Option<int> Nodes { get; } = new("--nodes") { Description = "Nodes per cluster", DefaultValueFactory = _ => 7 };
        public Option<int> Clients { get; } = new("--clients") { Description = "Client libraries (each with its own forwarder)", DefaultValueFactory = _ => 8 };
        public Option<int> Pipeline { get; } = new("--pipeline") { Description = "Requests in flight per client", DefaultValueFactory = _ => 4 };
        public Option<int> ValueSize { get; } = new("--value-size") { Description = "Value size in bytes", DefaultValueFactory = _ => 100 };
        public Option<string> Engine { get; } = Commands.EngineOption();
        public Option<string> Fsync { get; } = Commands.FsyncOption();
        public Option<string> Out { get; } = new("--out") { Description = "Directory for the JSON results and PNG charts", DefaultValueFactory = _ => Path.Combine("bench", "results") };

        public void AddTo(Command c)
        {
            foreach (var o in new Option[] { Nodes, Clients, Pipeline, ValueSize, Engine, Fsync, Out })
                c.Options.Add(o);
        }

        public BenchSettings Read(ParseResult r, List<string> errors)
        {
            var s = new BenchSettings(r.GetValue(Nodes), r.GetValue(Clients), r.GetValue(Pipeline), r.GetValue(ValueSize), r.GetValue(Engine)!, r.GetValue(Fsync)!, r.GetValue(Out)!);
            if (s.Nodes is < 1 or > 64)
                errors.Add($"--nodes must be 1..64, got {s.Nodes}");
            if (s.Clients is < 1 or > 1024)
                errors.Add($"--clients must be 1..1024, got {s.Clients}");
            if (s.Pipeline is < 1 or > 1024)
                errors.Add($"--pipeline must be 1..1024, got {s.Pipeline}");
            if (s.ValueBytes is < 0 or > Core.Limits.ValueBytesMaxDefault)
                errors.Add($"--value-size must be 0..{Core.Limits.ValueBytesMaxDefault}, got {s.ValueBytes}");
            return s;
        }
    }

    private static void Fail(List<string> errors)
    {
        if (errors.Count > 0)
            throw new CliException(string.Join(Environment.NewLine + "gtstore: ", errors), 2);
    }

    public static Command Build()
    {
        var bench = new Command("bench", "Benchmarks on fresh local clusters: throughput, balance, ycsb");
        bench.Subcommands.Add(Throughput());
        bench.Subcommands.Add(Balance());
        bench.Subcommands.Add(Ycsb());
        return bench;
    }

    private static Command Throughput()
    {
        var shared = new Shared();
        var replicas = new Option<string>("--replicas") { Description = "Replication factors to compare, comma-separated", DefaultValueFactory = _ => "1,3,5" };
        var ops = new Option<long>("--ops") { Description = "Operations per replication factor", DefaultValueFactory = _ => 200_000 };
        var readRatio = new Option<double>("--read-ratio") { Description = "Share of reads, 0..1", DefaultValueFactory = _ => 0.5 };
        var command = new Command("throughput", "Mixed workload: ops/s and p50/p99/p99.9 latency per replication factor") { replicas, ops, readRatio };
        shared.AddTo(command);
        command.SetAction(async (r, _) =>
        {
            var errors = new List<string>();
            var s = shared.Read(r, errors);
            var ns = new List<int>();
            foreach (var part in r.GetValue(replicas)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (int.TryParse(part, out var n) && n >= 1 && n <= Math.Min(s.Nodes, Core.Limits.ReplicationFactorMax))
                    ns.Add(n);
                else
                    errors.Add($"--replicas values must be 1..{Math.Min(s.Nodes, Core.Limits.ReplicationFactorMax)} (at most --nodes), got '{part}'");
            }
            var count = r.GetValue(ops);
            if (count is < 1 or > 100_000_000)
                errors.Add($"--ops must be 1..100000000, got {count}");
            var ratio = r.GetValue(readRatio);
            if (ratio is < 0 or > 1)
                errors.Add($"--read-ratio must be 0..1, got {ratio}");
            Fail(errors);
            return await BenchCommands.ThroughputAsync(s, ns, count, ratio).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Balance()
    {
        var shared = new Shared();
        var keys = new Option<long>("--keys") { Description = "Keys to write", DefaultValueFactory = _ => 100_000 };
        var replicas = new Option<int>("--replicas") { Description = "Replication factor", DefaultValueFactory = _ => 1 };
        var tokens = new Option<int>("--tokens") { Description = "Tokens per node", DefaultValueFactory = _ => 3 };
        var command = new Command("balance", "Keys per node and max/mean after writing many keys") { keys, replicas, tokens };
        shared.AddTo(command);
        command.SetAction(async (r, _) =>
        {
            var errors = new List<string>();
            var s = shared.Read(r, errors);
            var (k, n, v) = (r.GetValue(keys), r.GetValue(replicas), r.GetValue(tokens));
            if (k is < 1 or > 100_000_000)
                errors.Add($"--keys must be 1..100000000, got {k}");
            if (n < 1 || n > Math.Min(s.Nodes, Core.Limits.ReplicationFactorMax))
                errors.Add($"--replicas must be 1..{Math.Min(s.Nodes, Core.Limits.ReplicationFactorMax)}, got {n}");
            if (v is < 1 or > Core.Limits.TokensPerNodeMax)
                errors.Add($"--tokens must be 1..{Core.Limits.TokensPerNodeMax}, got {v}");
            Fail(errors);
            return await BenchCommands.BalanceAsync(s, k, n, v).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Ycsb()
    {
        var shared = new Shared();
        var workload = new Option<string>("--workload") { Description = "A (50/50), B (95/5) or C (read only)", DefaultValueFactory = _ => "A" };
        var distribution = new Option<string>("--distribution") { Description = "uniform or zipfian", DefaultValueFactory = _ => "zipfian" };
        var records = new Option<long>("--records") { Description = "Records loaded before the run", DefaultValueFactory = _ => 10_000 };
        var duration = new Option<int>("--duration") { Description = "Run time in seconds", DefaultValueFactory = _ => 10 };
        var replicas = new Option<int>("--replicas") { Description = "Replication factor", DefaultValueFactory = _ => 3 };
        var command = new Command("ycsb", "YCSB core workload A, B or C") { workload, distribution, records, duration, replicas };
        shared.AddTo(command);
        command.SetAction(async (r, _) =>
        {
            var errors = new List<string>();
            var s = shared.Read(r, errors);
            var (w, d, rec, sec, n) = (r.GetValue(workload)!, r.GetValue(distribution)!, r.GetValue(records), r.GetValue(duration), r.GetValue(replicas));
            if (w.ToUpperInvariant() is not ("A" or "B" or "C"))
                errors.Add($"--workload must be A, B or C, got '{w}'");
            if (d is not ("uniform" or "zipfian"))
                errors.Add($"--distribution must be uniform or zipfian, got '{d}'");
            if (rec is < 1 or > 10_000_000)
                errors.Add($"--records must be 1..10000000, got {rec}");
            if (sec is < 1 or > 3600)
                errors.Add($"--duration must be 1..3600 seconds, got {sec}");
            if (n < 1 || n > Math.Min(s.Nodes, Core.Limits.ReplicationFactorMax))
                errors.Add($"--replicas must be 1..{Math.Min(s.Nodes, Core.Limits.ReplicationFactorMax)}, got {n}");
            Fail(errors);
            return await BenchCommands.YcsbAsync(s, w, d, rec, TimeSpan.FromSeconds(sec), n).ConfigureAwait(false);
        });
        return command;
    }
}
