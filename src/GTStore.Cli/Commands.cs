using System.CommandLine;
using GTStore.Core;

namespace GTStore.Cli;

/// <summary>The command tree: parsing and validation only; each action calls into <see cref="Cluster"/>, <see cref="Daemons"/> or <see cref="Output"/>.</summary>
public static class Commands
{
    private static readonly Option<string?> Dir = new("--dir")
    {
        Description = "Cluster directory (default ./gtstore-data, or GTSTORE_DIR)",
        Recursive = true,
    };

    public static RootCommand Build()
    {
        var root = new RootCommand("GTStore: a Dynamo-style replicated key-value store") { Dir };
        root.Subcommands.Add(Start());
        root.Subcommands.Add(Simple("stop", "Stop every process of the cluster", async d =>
        {
            var stopped = await new Cluster(d).StopAsync().ConfigureAwait(false);
            Console.WriteLine($"stopped the manager and {stopped} node(s)");
            return 0;
        }));
        root.Subcommands.Add(Status());
        root.Subcommands.Add(Client());
        root.Subcommands.Add(Simple("add-node", "Start a new node and join it to the cluster", async d =>
        {
            var member = await new Cluster(d).AddNodeAsync().ConfigureAwait(false);
            Console.WriteLine($"{member.Node} joined (pid {member.Pid}, {member.Tokens} tokens, {member.Address})");
            return 0;
        }));
        root.Subcommands.Add(WithNodeId("leave", "Make a node hand off its data and exit", async (d, id) =>
        {
            var member = await new Cluster(d).LeaveAsync(id).ConfigureAwait(false);
            Console.WriteLine($"{member.Node} handed off its data and left (pid {member.Pid} exited)");
            return 0;
        }));
        root.Subcommands.Add(WithNodeId("kill", "Kill a node with SIGKILL (a crash)", async (d, id) =>
        {
            var member = await new Cluster(d).KillAsync(id).ConfigureAwait(false);
            Console.WriteLine($"{member.Node} killed (pid {member.Pid}, SIGKILL)");
            return 0;
        }));
        root.Subcommands.Add(WithNodeId("restart-node", "Start a killed or crashed node again on its own data", async (d, id) =>
        {
            var member = await new Cluster(d).RestartNodeAsync(id).ConfigureAwait(false);
            Console.WriteLine($"{member.Node} restarted (pid {member.Pid}) on its own data");
            return 0;
        }));
        root.Subcommands.Add(Simple("restart-manager", "Start a killed or crashed manager again on its own state", async d =>
        {
            var pid = await new Cluster(d).RestartManagerAsync().ConfigureAwait(false);
            Console.WriteLine($"manager restarted (pid {pid})");
            return 0;
        }));
        root.Subcommands.Add(Simple("kill-manager", "Kill the manager with SIGKILL (a crash)", async d =>
        {
            var file = d.Require();
            if (!Processes.Signal(file.ManagerPid, Processes.SigKill))
                throw new CliException($"the manager (pid {file.ManagerPid}) is not running", 1);
            await Processes.WaitExitAsync(file.ManagerPid, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            Console.WriteLine($"manager killed (pid {file.ManagerPid}, SIGKILL)");
            return 0;
        }));
        root.Subcommands.Add(Demo());
        root.Subcommands.Add(BenchCommand.Build());
        root.Subcommands.Add(ManagerDaemon());
        root.Subcommands.Add(NodeDaemon());
        return root;
    }

    private static ClusterDirectory DirOf(ParseResult r) => ClusterDirectory.FromOption(r.GetValue(Dir));

    private static Command Simple(string name, string description, Func<ClusterDirectory, Task<int>> action)
    {
        var command = new Command(name, description);
        command.SetAction((r, _) => action(DirOf(r)));
        return command;
    }

    private static Command WithNodeId(string name, string description, Func<ClusterDirectory, string, Task<int>> action)
    {
        var id = new Argument<string>("ID") { Description = "Node id as 'status' lists it, e.g. server3" };
        var command = new Command(name, description) { id };
        command.SetAction((r, _) => action(DirOf(r), r.GetValue(id)!));
        return command;
    }

    // ---- cluster configuration flags, shared by start, demo and manager ------------------------

    private sealed class ConfigOptions
    {
        public Option<int> Rep { get; } = new("--rep") { Description = "Replication factor N (copies of each key)", DefaultValueFactory = _ => 3 };
        public Option<int?> ReadQuorum { get; } = new("--read-quorum") { Description = "R: replica answers per read (default: a majority of N)" };
        public Option<int?> WriteQuorum { get; } = new("--write-quorum") { Description = "W: replica acknowledgements per write (default: a majority of N)" };
        public Option<int> Tokens { get; } = new("--tokens") { Description = "V: tokens per node", DefaultValueFactory = _ => 3 };
        public Option<int> FailureTimeout { get; } = new("--failure-timeout-ms") { Description = "Silence after which the manager counts a node as down", DefaultValueFactory = _ => 2000 };
        public Option<int> RemoveAfter { get; } = new("--remove-after-ms") { Description = "Time down after which a node is removed and its data re-replicated", DefaultValueFactory = _ => 60_000 };
        public Option<int> TombstoneGrace { get; } = new("--tombstone-grace-ms") { Description = "Age a tombstone (delete) must reach before the replicas may purge it", DefaultValueFactory = _ => 600_000 };

        public void AddTo(Command c)
        {
            c.Options.Add(Rep);
            c.Options.Add(ReadQuorum);
            c.Options.Add(WriteQuorum);
            c.Options.Add(Tokens);
            c.Options.Add(FailureTimeout);
            c.Options.Add(RemoveAfter);
            c.Options.Add(TombstoneGrace);
        }

        /// <summary>The config, or a usage error listing every invalid flag at once.</summary>
        public ClusterConfig Read(ParseResult r, params string[] extraErrors)
        {
            var n = r.GetValue(Rep);
            var majority = Math.Max(1, n / 2 + 1);
            var config = new ClusterConfig
            {
                ReplicationFactor = n,
                ReadQuorum = r.GetValue(ReadQuorum) ?? Math.Min(majority, Math.Max(n, 1)),
                WriteQuorum = r.GetValue(WriteQuorum) ?? Math.Min(majority, Math.Max(n, 1)),
                TokensPerNode = r.GetValue(Tokens),
                FailureTimeoutMs = r.GetValue(FailureTimeout),
                RemoveAfterMs = r.GetValue(RemoveAfter),
                TombstoneGraceMs = r.GetValue(TombstoneGrace),
            };
            var errors = extraErrors.Concat(config.Validate()).ToList();
            if (errors.Count > 0)
                throw new CliException(string.Join(Environment.NewLine + "gtstore: ", errors), 2);
            return config;
        }
    }

    private static Option<string> TransportOption() => Choice("--transport", "Unix domain sockets, or TCP on 127.0.0.1", "uds", "uds", "tcp");

    private static Option<string> Choice(string name, string description, string defaultValue, params string[] allowed)
    {
        var option = new Option<string>(name) { Description = $"{description}: {string.Join(" or ", allowed)}", DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string>();
            if (!allowed.Contains(v))
                r.AddError($"{name} must be {string.Join(" or ", allowed)}, got '{v}'");
        });
        return option;
    }

    internal static Option<string> EngineOption() => Choice("--engine", "Storage engine", "rocksdb", "rocksdb", "memory");

    internal static Option<string> FsyncOption() => Choice("--fsync", "When RocksDB syncs writes", "always", "always", "batch", "none");

    internal static Option<string> SchedulingOption() => Choice("--scheduling",
        "How Linux schedules the node processes (batch: a node woken by a message does not preempt a running one, fewer task switches where nodes share cores; normal: the kernel's default)",
        "batch", "batch", "normal");

    /// <summary>Most MiB a node's value cache may be given.</summary>
    private const int ValueCacheMbMax = (int)(Storage.RocksDbEngine.ValueCacheBytesMax >> 20);

    private static Option<int> ValueCacheOption()
    {
        var option = new Option<int>("--value-cache-mb")
        {
            Description = "RocksDB engine: MiB of recently read values each node keeps in memory (0: none)",
            DefaultValueFactory = _ => (int)(Storage.RocksDbEngine.ValueCacheBytes >> 20),
        };
        option.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<int>();
            if (v is < 0 or > ValueCacheMbMax)
                r.AddError($"--value-cache-mb must be 0..{ValueCacheMbMax}, got {v}");
        });
        return option;
    }

    private static Command Start()
    {
        var nodes = new Option<int>("--nodes") { Description = "Number of storage nodes", DefaultValueFactory = _ => 3 };
        var transport = TransportOption();
        var engine = EngineOption();
        var fsync = FsyncOption();
        var valueCache = ValueCacheOption();
        var scheduling = SchedulingOption();
        var respPort = new Option<int>("--resp-port") { Description = "Redis protocol on 127.0.0.1: node i gets port BASE+i-1 (0: any free port each)", DefaultValueFactory = _ => 0 };
        var config = new ConfigOptions();
        var command = new Command("start", "Start a manager and N nodes in the background, and wait until they serve") { nodes, transport, engine, fsync, valueCache, scheduling, respPort };
        config.AddTo(command);
        command.SetAction(async (r, _) =>
        {
            var count = r.GetValue(nodes);
            var basePort = r.GetValue(respPort);
            var cfg = config.Read(r, [
                .. count is < 1 or > Limits.NodesMax ? [$"--nodes must be 1..{Limits.NodesMax}, got {count}"] : Array.Empty<string>(),
                .. basePort is < 0 or > 65535 - Limits.NodesMax ? [$"--resp-port must be 0 (any free port) or 1..{65535 - Limits.NodesMax}, got {basePort}"] : Array.Empty<string>(),
            ]);
            var cluster = new Cluster(DirOf(r));
            var file = await cluster.StartAsync(count, cfg, r.GetValue(transport)!, r.GetValue(engine)!, r.GetValue(fsync)!, basePort, r.GetValue(valueCache), r.GetValue(scheduling)!).ConfigureAwait(false);
            Console.WriteLine($"cluster started in {cluster.Directory.Root}: manager at {file.ManagerAddress}, {count} nodes, " +
                              $"N={cfg.ReplicationFactor} R={cfg.ReadQuorum} W={cfg.WriteQuorum}, {cfg.TokensPerNode} tokens per node");
            if (count < cfg.ReplicationFactor)
                Console.WriteLine($"note: {count} nodes is fewer than N={cfg.ReplicationFactor}; requests are refused until enough nodes join (gtstore add-node)");
            return 0;
        });
        return command;
    }

    private static Command Status()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var command = new Command("status", "Show the manager and nodes: id, pid, address, state, tokens, keys") { json };
        command.SetAction(async (r, _) =>
        {
            var file = DirOf(r).Require();
            var status = await Admin.StatusAsync(file.ManagerAddress).ConfigureAwait(false);
            var views = await Admin.NodesAsync(status).ConfigureAwait(false);
            if (r.GetValue(json))
                Console.WriteLine(Output.StatusJson(file, status, views));
            else
                Output.StatusTable(file, status, views);
            return 0;
        });
        return command;
    }

    private static Command Client()
    {
        var put = new Option<string?>("--put") { Description = "Key to write (with --val)" };
        var val = new Option<string?>("--val") { Description = "Value to write" };
        var get = new Option<string?>("--get") { Description = "Key to read" };
        var delete = new Option<string?>("--delete") { Description = "Key to delete" };
        var command = new Command("client", "Put, get or delete one key") { put, val, get, delete };
        command.SetAction(async (r, _) =>
        {
            var (p, v, g, d) = (r.GetValue(put), r.GetValue(val), r.GetValue(get), r.GetValue(delete));
            var chosen = new[] { p, g, d }.Count(x => x is not null);
            if (chosen != 1)
                throw new CliException("client needs exactly one of --put KEY --val VALUE, --get KEY, --delete KEY", 2);
            if (p is not null && v is null)
                throw new CliException("--put needs --val VALUE", 2);
            if (v is not null && p is null)
                throw new CliException("--val goes with --put KEY", 2);
            return await ClientCommand.RunAsync(DirOf(r), p, v, g, d).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Demo()
    {
        var clients = new Option<int>("--clients") { Description = "K: clients, each putting one key", DefaultValueFactory = _ => 20 };
        var transport = TransportOption();
        var config = new ConfigOptions();
        var command = new Command("demo", "The seed's test application on a fresh temporary cluster: replace every node, lose no key") { clients, transport };
        config.AddTo(command);
        command.SetAction(async (r, _) =>
        {
            var k = r.GetValue(clients);
            var cfg = config.Read(r, k is < 1 or > 100_000 ? [$"--clients must be 1..100000, got {k}"] : []);
            return await DemoCommand.RunAsync(cfg, k, r.GetValue(transport)!).ConfigureAwait(false);
        });
        return command;
    }

    private static Command ManagerDaemon()
    {
        var listen = new Option<string>("--listen") { Description = "Address to listen on (a socket path, or host:port)", Required = true };
        var config = new ConfigOptions();
        var command = new Command("manager", "Run the manager daemon (started for you by 'start')") { listen };
        config.AddTo(command);
        command.SetAction((r, _) =>
        {
            var data = r.GetValue(Dir) ?? throw new CliException("manager needs --dir DATA_DIRECTORY", 2);
            return Daemons.RunManagerAsync(data, r.GetValue(listen)!, config.Read(r));
        });
        return command;
    }

    private static Command NodeDaemon()
    {
        var manager = new Option<string>("--manager") { Description = "The manager's address", Required = true };
        var listen = new Option<string>("--listen") { Description = "Address to listen on (a socket path, or host:port)", Required = true };
        var data = new Option<string>("--data") { Description = "This node's data directory", Required = true };
        var engine = EngineOption();
        var fsync = FsyncOption();
        var valueCache = ValueCacheOption();
        var scheduling = SchedulingOption();
        var resp = new Option<string?>("--resp") { Description = "Serve the Redis protocol at host:port (port 0: any free port)" };
        var command = new Command("node", "Run a storage node daemon (started for you by 'start' and 'add-node')") { manager, listen, data, engine, fsync, valueCache, scheduling, resp };
        command.SetAction((r, _) => Daemons.RunNodeAsync(r.GetValue(manager)!, r.GetValue(listen)!, r.GetValue(data)!,
            r.GetValue(engine)!, Enum.Parse<Storage.FsyncMode>(r.GetValue(fsync)!, ignoreCase: true), r.GetValue(resp), r.GetValue(valueCache),
            Enum.Parse<Hosting.CpuScheduling>(r.GetValue(scheduling)!, ignoreCase: true)));
        return command;
    }
}
