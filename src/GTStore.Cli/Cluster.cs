using System.Globalization;
using GTStore.Core;
using GTStore.Core.Messages;

namespace GTStore.Cli;

/// <summary>Cluster operations shared by the commands and the demo: start, add, leave, kill, stop.</summary>
public sealed class Cluster(ClusterDirectory directory)
{
    public static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(90);

    public ClusterDirectory Directory { get; } = directory;

    /// <summary>Starts the manager and <paramref name="nodes"/> nodes, and waits until all are up.</summary>
    public async Task<ClusterFile> StartAsync(int nodes, ClusterConfig config, string transport, string engine = "rocksdb", string fsync = "always", int respPortBase = 0, int valueCacheMb = (int)(Storage.RocksDbEngine.ValueCacheBytes >> 20), string scheduling = "batch")
    {
        if (Directory.Read() is { } existing && Processes.IsGtstore(existing.ManagerPid))
        {
            throw new CliException(
                $"a cluster is still running in {Directory.Root} (manager pid {existing.ManagerPid}); stop it first with 'gtstore stop --dir {Directory.Root}'", 1);
        }
        System.IO.Directory.CreateDirectory(Directory.Root);
        var sockets = Directory.ChooseSocketDirectory();
        System.IO.Directory.CreateDirectory(sockets);
        System.IO.Directory.CreateDirectory(Directory.ManagerDirectory);
        var listen = transport == "tcp" ? "127.0.0.1:0" : Path.Combine(sockets, "manager.sock");
        var (pid, address) = await StartManagerAsync(listen, config).ConfigureAwait(false);
        var file = new ClusterFile
        {
            Transport = transport,
            ManagerAddress = address,
            ManagerPid = pid,
            Config = config,
            SocketDirectory = sockets,
            Engine = engine,
            Fsync = fsync,
            ValueCacheMb = valueCacheMb,
            Scheduling = scheduling,
            RespPortBase = respPortBase,
        };
        Directory.Write(file);
        for (var i = 0; i < nodes; i++)
            LaunchNode(file);
        Directory.Write(file);
        // The processes just launched, not only a member list: a manager restarted over an old
        // cluster directory lists the members it had, up, before they have rejoined.
        var launched = file.Nodes.Select(n => n.Pid).ToHashSet();
        var status = await Admin.WaitForAsync(address, s => Admin.Settled(s, nodes) && s.Members.All(m => launched.Contains(m.Pid)),
            SettleTimeout, $"{nodes} nodes to join", () => Exited(file.Nodes)).ConfigureAwait(false);
        await WaitForRespAsync(status.Members, () => Exited(file.Nodes)).ConfigureAwait(false);
        return file;
    }

    /// <summary>
    /// Waits until each member listens for Redis clients: a node opens its RESP port only once it
    /// has joined, so "up" at the manager comes a moment before a client could connect.
    /// </summary>
    private async Task WaitForRespAsync(IEnumerable<MemberStatus> members, Func<string?> failed)
    {
        var deadline = DateTime.UtcNow + SettleTimeout;
        foreach (var member in members)
        {
            while ((await Admin.NodeStatsAsync(member.Address).ConfigureAwait(false))?.Resp is not { Length: > 0 })
            {
                if (failed() is { } failure)
                    throw new CliException($"{failure} (while waiting for {member.Node} to open its Redis port)", 1);
                if (DateTime.UtcNow > deadline)
                    throw new CliException($"timed out after {SettleTimeout.TotalSeconds:0} s waiting for {member.Node} to open its Redis port; see its log", 1);
                await Task.Delay(20).ConfigureAwait(false); // Polling: the node has no push channel to the CLI.
            }
        }
    }

    /// <summary>The first of <paramref name="nodes"/> whose process has exited, with the last line of its log (its error).</summary>
    private string? Exited(IEnumerable<LaunchedNode> nodes)
    {
        foreach (var n in nodes)
        {
            if (!Processes.HasExited(n.Pid))
                continue;
            var log = Directory.NodeLog(n.Slot);
            var last = File.Exists(log) ? File.ReadLines(log).LastOrDefault(l => l.Length > 0) : null;
            return $"the node in {Directory.NodeDirectory(n.Slot)} (pid {n.Pid}) exited: {last ?? "its log is empty"}";
        }
        return null;
    }

    private async Task<(int Pid, string Address)> StartManagerAsync(string listen, ClusterConfig config)
    {
        File.Delete(Directory.ManagerAddressFile);
        using var manager = Processes.StartDaemon(
            ["manager", "--dir", Directory.ManagerDirectory, "--listen", listen,
             "--rep", Str(config.ReplicationFactor), "--read-quorum", Str(config.ReadQuorum),
             "--write-quorum", Str(config.WriteQuorum), "--tokens", Str(config.TokensPerNode),
             "--failure-timeout-ms", Str(config.FailureTimeoutMs), "--remove-after-ms", Str(config.RemoveAfterMs),
             "--tombstone-grace-ms", Str(config.TombstoneGraceMs)],
            Directory.ManagerLog);
        return (manager.Id, await WaitForManagerAddressAsync(manager).ConfigureAwait(false));
    }

    /// <summary>Starts the manager again on its own state and address (after a crash or kill).</summary>
    public async Task<int> RestartManagerAsync()
    {
        var file = Directory.Require();
        if (Processes.IsGtstore(file.ManagerPid))
            throw new CliException($"the manager is still running (pid {file.ManagerPid}); kill it first", 1);
        var (pid, _) = await StartManagerAsync(file.ManagerAddress, file.Config).ConfigureAwait(false);
        Directory.Write(file with { ManagerPid = pid });
        await Admin.WaitForAsync(file.ManagerAddress, _ => true, SettleTimeout, "the manager to answer").ConfigureAwait(false);
        return pid;
    }

    /// <summary>Starts a node again on its own data and address (after kill or a crash); it rejoins as the same member.</summary>
    public async Task<MemberStatus> RestartNodeAsync(string id)
    {
        var file = Directory.Require();
        if (!NodeId.TryParse(id, out var node))
            throw new CliException($"'{id}' is not a node id: use an id that 'gtstore status' lists, like server3", 2);
        var launched = LaunchedAs(file, node)
            ?? throw new CliException($"no node directory of {node} in {Directory.Root}", 1);
        var status = await Admin.StatusAsync(file.ManagerAddress).ConfigureAwait(false);
        if (status.Members.FirstOrDefault(m => m.Node == node) is { } member && Processes.IsGtstore(member.Pid))
            throw new CliException($"{node} is still running (pid {member.Pid}); kill it first", 1);
        var address = Node.NodeHost.ReadIdentity(Directory.NodeDirectory(launched.Slot))!.Value.Address;
        var pid = StartNodeProcess(file, launched.Slot, address);
        file.Nodes[file.Nodes.IndexOf(launched)] = launched with { Pid = pid };
        Directory.Write(file);
        var after = await Admin.WaitForAsync(file.ManagerAddress, s => s.Members.Any(m => m.Pid == pid && !m.Down),
            SettleTimeout, $"{node} to rejoin", () => Exited([launched with { Pid = pid }])).ConfigureAwait(false);
        var rejoined = after.Members.First(m => m.Pid == pid);
        await WaitForRespAsync([rejoined], () => Exited([launched with { Pid = pid }])).ConfigureAwait(false);
        return rejoined;
    }

    private async Task<string> WaitForManagerAddressAsync(System.Diagnostics.Process manager)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            // The manager writes the file atomically once bound; an empty read is never an address.
            if (File.Exists(Directory.ManagerAddressFile)
                && (await File.ReadAllTextAsync(Directory.ManagerAddressFile).ConfigureAwait(false)).Trim() is { Length: > 0 } address)
                return address;
            if (manager.HasExited)
                throw new CliException($"the manager exited at start (code {manager.ExitCode}); see {Directory.ManagerLog}", 1);
            await Task.Delay(50).ConfigureAwait(false); // The manager writes its address once bound.
        }
        throw new CliException($"the manager did not start within 30 s; see {Directory.ManagerLog}", 1);
    }

    /// <summary>Starts one more node process in the next free slot (it joins by itself).</summary>
    public LaunchedNode LaunchNode(ClusterFile file)
    {
        var slot = file.Nodes.Count == 0 ? 1 : file.Nodes.Max(n => n.Slot) + 1;
        var listen = file.Transport == "tcp" ? "127.0.0.1:0" : Path.Combine(file.SocketDirectory, $"node-{slot}.sock");
        var launched = new LaunchedNode(slot, StartNodeProcess(file, slot, listen), listen);
        file.Nodes.Add(launched);
        return launched;
    }

    private LaunchedNode? LaunchedAs(ClusterFile file, NodeId node) =>
        file.Nodes.FirstOrDefault(n => Node.NodeHost.ReadIdentity(Directory.NodeDirectory(n.Slot))?.Id == node);

    private int StartNodeProcess(ClusterFile file, int slot, string listen)
    {
        using var process = Processes.StartDaemon(
            ["node", "--manager", file.ManagerAddress, "--listen", listen, "--data", Directory.NodeDirectory(slot), "--engine", file.Engine, "--fsync", file.Fsync,
             "--value-cache-mb", file.ValueCacheMb.ToString(System.Globalization.CultureInfo.InvariantCulture), "--scheduling", file.Scheduling,
             "--resp", $"127.0.0.1:{(file.RespPortBase == 0 ? 0 : file.RespPortBase + slot - 1)}"],
            Directory.NodeLog(slot));
        return process.Id;
    }

    /// <summary>Starts a node and waits until the manager has it up; returns its member entry.</summary>
    public async Task<MemberStatus> AddNodeAsync()
    {
        var file = Directory.Require();
        var launched = LaunchNode(file);
        Directory.Write(file);
        var status = await Admin.WaitForAsync(file.ManagerAddress,
            s => !s.InTransition && s.Members.Any(m => m.Pid == launched.Pid && m.State == MemberState.Up),
            SettleTimeout, $"the new node (pid {launched.Pid}) to join", () => Exited([launched])).ConfigureAwait(false);
        var member = status.Members.First(m => m.Pid == launched.Pid);
        await WaitForRespAsync([member], () => Exited([launched])).ConfigureAwait(false);
        return member;
    }

    /// <summary>Asks the manager to hand off <paramref name="id"/>'s data; waits until it has left and exited.</summary>
    public async Task<MemberStatus> LeaveAsync(string id)
    {
        var file = Directory.Require();
        var member = Admin.FindMember(await Admin.StatusAsync(file.ManagerAddress).ConfigureAwait(false), id);
        var reply = await Admin.RequestAsync(file.ManagerAddress, new AdminLeave(member.Node), SettleTimeout).ConfigureAwait(false);
        if (reply is ErrorReply error)
            throw new CliException(error.Message, 1);
        // The node drains for up to 30 s after it left (requests in flight, hints, handovers of
        // what it did not stream while cut off); its exit comes after that.
        var exitWait = TimeSpan.FromSeconds(40);
        if (!await Processes.WaitExitAsync(member.Pid, exitWait).ConfigureAwait(false))
            throw new CliException($"{member.Node} left the ring but its process {member.Pid} did not exit within {exitWait.TotalSeconds:0} s; see its log", 1);
        return member;
    }

    /// <summary>Kills <paramref name="id"/> with SIGKILL: a crash, no hand-off.</summary>
    public async Task<MemberStatus> KillAsync(string id)
    {
        var file = Directory.Require();
        MemberStatus member;
        try
        {
            member = Admin.FindMember(await Admin.StatusAsync(file.ManagerAddress).ConfigureAwait(false), id);
        }
        catch (CliException) when (NodeId.TryParse(id, out var node) && LaunchedAs(file, node) is { } launched)
        {
            // The manager is down: the node's own directory says which process it is.
            member = new MemberStatus(node, launched.Listen, launched.Pid, MemberState.Up, 0);
        }
        if (!Processes.Signal(member.Pid, Processes.SigKill))
            throw new CliException($"{member.Node} (pid {member.Pid}) is not running", 1);
        await Processes.WaitExitAsync(member.Pid, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        return member;
    }

    /// <summary>Stops every process of the cluster: nodes first (SIGTERM, then SIGKILL after a grace period), then the manager.</summary>
    public async Task<int> StopAsync()
    {
        var file = Directory.Require();
        var pids = file.Nodes.Select(n => n.Pid).ToHashSet();
        if (Processes.IsGtstore(file.ManagerPid))
        {
            try
            {
                foreach (var m in (await Admin.StatusAsync(file.ManagerAddress).ConfigureAwait(false)).Members)
                    pids.Add(m.Pid);
            }
            catch (CliException)
            {
                // The manager is not answering; the recorded pids are all we have.
            }
        }
        var running = pids.Where(Processes.IsGtstore).ToList();
        await Task.WhenAll(running.Select(p => Processes.StopAsync(p, TimeSpan.FromSeconds(10)))).ConfigureAwait(false);
        await Processes.StopAsync(file.ManagerPid, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        // Sockets of crashed nodes stay behind; nothing listens on them any more.
        if (file.Transport == "uds" && System.IO.Directory.Exists(file.SocketDirectory))
        {
            foreach (var socket in System.IO.Directory.EnumerateFiles(file.SocketDirectory, "*.sock"))
                File.Delete(socket);
        }
        return running.Count;
    }

    private static string Str(int v) => v.ToString(CultureInfo.InvariantCulture);
}
