using System.Diagnostics;
using System.Text.Json.Nodes;
using GTStore.Client;
using GTStore.Core.Messages;
using GTStore.Protocol;
using GTStore.Transport;
using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary>
/// One test's cluster of real processes in its own short temporary directory (<c>/tmp/gti-XXXX</c>,
/// so the Unix socket paths under it stay below the 108-byte limit). Disposing stops it with
/// <c>gtstore stop</c>, then kills by pid any of its processes that still run; a test that did not
/// call <see cref="Passed"/> gets the tails of the manager and node logs in its output.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    /// <summary>How long a polled condition on <c>status --json</c> may take to hold.</summary>
    public static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Lines of each daemon log copied into the output of a failed test.</summary>
    private const int LogTailLines = 60;

    private readonly ITestOutputHelper _output;
    private readonly HashSet<int> _pids = [];
    private readonly List<Action> _afterStop = [];
    private bool _passed;

    private TestCluster(ITestOutputHelper output, string dir)
    {
        _output = output;
        Dir = dir;
    }

    /// <summary>The cluster directory passed as <c>--dir</c>.</summary>
    public string Dir { get; }

    /// <summary>Creates a fresh directory for a cluster without starting one.</summary>
    public static TestCluster Create(ITestOutputHelper output)
    {
        // Short and unique: /tmp/gti-<8 hex>; Path.GetTempPath may be long on some machines.
        var root = Directory.Exists("/tmp") ? "/tmp" : Path.GetTempPath();
        var dir = Path.Combine(root, "gti-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return new TestCluster(output, dir);
    }

    /// <summary>Takes over a cluster directory something else started (e.g. the demo's), so disposal stops it.</summary>
    public static TestCluster Adopt(ITestOutputHelper output, string dir)
    {
        var cluster = new TestCluster(output, dir);
        cluster.RememberPids();
        return cluster;
    }

    /// <summary>
    /// Stops the clusters a command that starts its own (the demo, a bench) left behind in the
    /// temporary directories matching <paramref name="searchPattern"/>, as when it was killed at
    /// its cap; their logs are dumped unless the command <paramref name="passed"/>.
    /// </summary>
    public static async Task StopLeftoversAsync(ITestOutputHelper output, string searchPattern, bool passed)
    {
        foreach (var leftover in Directory.GetDirectories(Path.GetTempPath(), searchPattern))
        {
            if (!File.Exists(Path.Combine(leftover, "cluster.json")))
                continue;
            await using var cluster = Adopt(output, leftover);
            if (passed)
                cluster.Passed();
        }
    }

    /// <summary>Creates a directory and runs <c>gtstore start --dir D startArgs...</c>, which must exit 0.</summary>
    public static async Task<TestCluster> StartAsync(ITestOutputHelper output, params string[] startArgs)
    {
        var cluster = Create(output);
        try
        {
            await cluster.RunOkAsync(["start", .. startArgs]).ConfigureAwait(false);
            cluster.RememberPids();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Marks the test as passed: disposal then skips the log dump.</summary>
    public void Passed() => _passed = true;

    /// <summary>Runs <paramref name="cleanup"/> at disposal once every process of the cluster is gone, before the directory is deleted (e.g. to unmount a filesystem under it).</summary>
    public void AfterStop(Action cleanup) => _afterStop.Add(cleanup);

    /// <summary>Client options for the manager, with every node address recorded in the node directories as fallbacks (as <c>gtstore client</c> does).</summary>
    public ClientOptions ClientOptions(TimeSpan? requestTimeout = null)
    {
        var nodes = Path.Combine(Dir, "nodes");
        var fallbacks = Directory.Exists(nodes)
            ? Directory.EnumerateDirectories(nodes).Order().Select(NodeIdentity).OfType<(string Id, string Address)>().Select(n => n.Address).ToList()
            : [];
        return new ClientOptions(ManagerAddress) { FallbackNodes = fallbacks, RequestTimeout = requestTimeout ?? TimeSpan.FromSeconds(10) };
    }

    /// <summary>The id and address a node data directory last served as (its <c>node.id</c>), or null before it joined.</summary>
    public static (string Id, string Address)? NodeIdentity(string nodeDirectory)
    {
        var path = Path.Combine(nodeDirectory, "node.id");
        if (!File.Exists(path))
            return null;
        var lines = File.ReadAllLines(path);
        return lines.Length >= 2 ? (lines[0].Trim(), lines[1].Trim()) : null;
    }

    /// <summary>The node <paramref name="id"/> of a status; fails the test if it is not listed.</summary>
    public static JsonObject Node(JsonObject status, string id) =>
        Nodes(status).FirstOrDefault(n => n["id"]!.GetValue<string>() == id)
        ?? throw new Xunit.Sdk.XunitException($"{id} is not in status: {status.ToJsonString()}");

    /// <summary>The "state" of node <paramref name="id"/>, or null when it is not a member.</summary>
    public static string? StateOf(JsonObject status, string id) =>
        Nodes(status).FirstOrDefault(n => n["id"]!.GetValue<string>() == id)?["state"]?.GetValue<string>();

    /// <summary>
    /// Sends <paramref name="signal"/> (e.g. "STOP", "CONT", "KILL") to the processes <paramref name="pids"/> with one
    /// <c>kill</c>, after checking each runs gtstore with this cluster's directory on its command line (never a reused pid).
    /// </summary>
    public async Task SignalAsync(string signal, params int[] pids)
    {
        foreach (var pid in pids)
        {
            var cmdline = IsGtstore(pid) ? File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ') : "";
            if (!cmdline.Contains(Dir, StringComparison.Ordinal))
                throw new InvalidOperationException($"pid {pid} is not a gtstore process of {Dir}: '{cmdline}'");
            _pids.Add(pid);
        }
        var start = new ProcessStartInfo("kill") { UseShellExecute = false, RedirectStandardError = true };
        start.ArgumentList.Add("-" + signal);
        foreach (var pid in pids)
            start.ArgumentList.Add(pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not run kill");
        var stderr = await process.StandardError.ReadToEndAsync().ConfigureAwait(false);
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        GtstoreProcess.Log(_output, $"$ kill -{signal} {string.Join(' ', pids)}  (exit {process.ExitCode}) {stderr.Trim()}");
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"kill -{signal} {string.Join(' ', pids)} failed: {stderr}");
    }

    /// <summary>Runs <c>gtstore args... --dir D</c>.</summary>
    public Task<ProcessResult> RunAsync(params string[] args) =>
        GtstoreProcess.RunAsync(_output, [.. args, "--dir", Dir]);

    /// <summary>Runs <c>gtstore args... --dir D</c> and fails the test unless it exits 0.</summary>
    public Task<ProcessResult> RunOkAsync(params string[] args) =>
        GtstoreProcess.RunOkAsync(_output, [.. args, "--dir", Dir]);

    /// <summary>The manager's address as <c>start</c> recorded it in <c>cluster.json</c>.</summary>
    public string ManagerAddress => ClusterFile()?["ManagerAddress"]?.GetValue<string>()
        ?? throw new InvalidOperationException($"no cluster.json with a ManagerAddress in {Dir}");

    /// <summary><c>status --json</c>, parsed.</summary>
    public async Task<JsonObject> StatusAsync()
    {
        var result = await RunOkAsync("status", "--json").ConfigureAwait(false);
        var status = JsonNode.Parse(result.Stdout)?.AsObject() ?? throw new InvalidOperationException("status --json printed no object");
        Remember(status);
        return status;
    }

    /// <summary>Polls <c>status --json</c> until <paramref name="condition"/> holds; fails naming <paramref name="what"/> and the last status at the deadline.</summary>
    public async Task<JsonObject> WaitForStatusAsync(Func<JsonObject, bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.StartNew();
        var limit = timeout ?? SettleTimeout;
        JsonObject? last = null;
        while (deadline.Elapsed < limit)
        {
            last = await StatusAsync().ConfigureAwait(false);
            if (condition(last))
                return last;
            // Poll interval: the manager has no push channel for status; each poll is a process start anyway.
            await Task.Delay(250).ConfigureAwait(false);
        }
        throw new Xunit.Sdk.XunitException($"timed out after {limit.TotalSeconds:0} s waiting for {what}; last status: {last?.ToJsonString()}");
    }

    /// <summary>
    /// The manager's own view (members, and which it counts down), asked directly: quick even while
    /// a node is paused, where <c>status</c> also waits on each node's own counts.
    /// </summary>
    public async Task<StatusReply> ManagerViewAsync()
    {
        await using var connection = await FrameConnection.ConnectAsync(ManagerAddress, null, CancellationToken.None).ConfigureAwait(false);
        var request = new StatusRequest();
        var frame = await connection.RequestAsync(MessageCodec.TypeOf(request), MessageCodec.Encode(request), TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        return (StatusReply)MessageCodec.Decode(frame.Type, frame.Payload.Span);
    }

    /// <summary>Polls <see cref="ManagerViewAsync"/> every 20 ms until <paramref name="condition"/> holds; returns <paramref name="clock"/>'s reading when it did.</summary>
    public async Task<TimeSpan> WaitForManagerViewAsync(Func<StatusReply, bool> condition, string what, Stopwatch clock, TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.StartNew();
        var limit = timeout ?? SettleTimeout;
        StatusReply? last = null;
        while (deadline.Elapsed < limit)
        {
            var asked = clock.Elapsed;
            last = await ManagerViewAsync().ConfigureAwait(false);
            if (condition(last))
                return asked;
            await Task.Delay(20).ConfigureAwait(false); // The manager has no push channel for its view.
        }
        throw new Xunit.Sdk.XunitException($"timed out after {limit.TotalSeconds:0} s waiting for {what}; last view: " +
                                           string.Join(", ", last?.Members.Select(m => $"{m.Node} {m.State}{(m.Down ? " down" : "")}") ?? []));
    }

    /// <summary>The nodes array of a status.</summary>
    public static IReadOnlyList<JsonObject> Nodes(JsonObject status) =>
        status["nodes"]!.AsArray().Select(n => n!.AsObject()).ToList();

    /// <summary>The sum of "keys" over the nodes of a status (a node that does not answer counts as null, which fails the sum).</summary>
    public static long? KeySum(JsonObject status)
    {
        long sum = 0;
        foreach (var node in Nodes(status))
        {
            if (node["keys"] is not { } keys)
                return null;
            sum += keys.GetValue<long>();
        }
        return sum;
    }

    /// <summary>True when no membership change is in progress and exactly <paramref name="nodes"/> nodes are all up.</summary>
    public static bool Settled(JsonObject status, int nodes) =>
        !status["inTransition"]!.GetValue<bool>()
        && Nodes(status).Count == nodes
        && Nodes(status).All(n => n["state"]!.GetValue<string>() == "up");

    public async ValueTask DisposeAsync()
    {
        RememberPids();
        if (!_passed)
            DumpLogs();
        if (File.Exists(Path.Combine(Dir, "cluster.json")))
        {
            try
            {
                // Learn pids of nodes added since the last status, while the manager still answers.
                await StatusAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is Xunit.Sdk.XunitException or InvalidOperationException or TimeoutException or System.Text.Json.JsonException)
            {
                // The manager may be down already; the pids seen so far are what we have.
            }
            try
            {
                await RunAsync("stop").ConfigureAwait(false);
            }
            catch (TimeoutException e)
            {
                GtstoreProcess.Log(_output, "stop did not finish: " + e.Message);
            }
        }
        await KillSurvivorsAsync().ConfigureAwait(false);
        foreach (var cleanup in _afterStop)
        {
            try
            {
                cleanup();
            }
            catch (Exception e)
            {
                GtstoreProcess.Log(_output, "cleanup after stop failed: " + e);
            }
        }
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
            // A leftover directory under /tmp is harmless.
        }
    }

    private JsonObject? ClusterFile()
    {
        var path = Path.Combine(Dir, "cluster.json");
        return File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path))?.AsObject() : null;
    }

    private void RememberPids()
    {
        try
        {
            if (ClusterFile() is not { } file)
                return;
            _pids.Add(file["ManagerPid"]!.GetValue<int>());
            foreach (var node in file["Nodes"]!.AsArray())
                _pids.Add(node!["Pid"]!.GetValue<int>());
        }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidOperationException or NullReferenceException)
        {
            // cluster.json is being rewritten; the pids seen so far are what we have.
        }
    }

    private void Remember(JsonObject status)
    {
        if (status["manager"]?["pid"] is { } manager)
            _pids.Add(manager.GetValue<int>());
        foreach (var node in Nodes(status))
            _pids.Add(node["pid"]!.GetValue<int>());
    }

    /// <summary>SIGKILLs, by pid, every process of this cluster still running after <c>stop</c>, and waits until they are gone.</summary>
    private async Task KillSurvivorsAsync()
    {
        var survivors = _pids.Where(IsGtstore).ToList();
        foreach (var pid in survivors)
        {
            GtstoreProcess.Log(_output, $"pid {pid} still runs after 'gtstore stop': killing it");
            try
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // It exited between the check and the kill.
            }
        }
        var deadline = Stopwatch.StartNew();
        while (survivors.Any(IsGtstore) && deadline.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20).ConfigureAwait(false); // Polling /proc: a process that is not our child has no exit event to await.
        foreach (var pid in survivors.Where(IsGtstore))
            GtstoreProcess.Log(_output, $"pid {pid} survived SIGKILL for 10 s");
    }

    /// <summary>True when <paramref name="pid"/> runs a gtstore binary (a reused pid is left alone) and is not a zombie.</summary>
    public static bool IsGtstore(int pid)
    {
        try
        {
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return cmdline.Contains("gtstore", StringComparison.Ordinal) && state != "Z";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private void DumpLogs()
    {
        var logs = new List<string> { Path.Combine(Dir, "manager", "manager.log") };
        var nodes = Path.Combine(Dir, "nodes");
        if (Directory.Exists(nodes))
            logs.AddRange(Directory.EnumerateDirectories(nodes).Order().Select(d => Path.Combine(d, "node.log")));
        foreach (var log in logs.Where(File.Exists))
        {
            var lines = File.ReadAllLines(log);
            GtstoreProcess.Log(_output, $"===== {log} (last {Math.Min(LogTailLines, lines.Length)} of {lines.Length} lines) =====");
            foreach (var line in lines.TakeLast(LogTailLines))
                GtstoreProcess.Log(_output, line);
        }
    }
}
