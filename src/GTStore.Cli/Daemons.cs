using System.Runtime.InteropServices;
using GTStore.Core;
using GTStore.Manager;
using GTStore.Node;
using Microsoft.Extensions.Logging;

namespace GTStore.Cli;

/// <summary><c>gtstore manager</c> and <c>gtstore node</c>: the daemons, normally started by <c>gtstore start</c>.</summary>
public static class Daemons
{
    private static ILoggerFactory Logs() => LoggerFactory.Create(b => b
        .SetMinimumLevel(Environment.GetEnvironmentVariable("GTSTORE_LOG_LEVEL") is { } level && Enum.TryParse<LogLevel>(level, true, out var l) ? l : LogLevel.Information)
        .AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        }));

    /// <summary>Completes on SIGTERM or SIGINT.</summary>
    private static Task TerminationAsync(out IDisposable[] registrations)
    {
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); }),
            PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); }),
        ];
        return stop.Task;
    }

    /// <summary>
    /// A daemon runs its socket work on one thread: a completed receive or send continues on the
    /// thread that polls the sockets instead of hopping to a pool thread, and with the loop's
    /// synchronous continuations a request then costs its process one wake-up rather than several
    /// (docs/ARCHITECTURE.md, "Performance"). On x86-64 Linux the connections go further and are
    /// served by GTStore's own epoll thread (<see cref="Transport.SocketStreams.UseReactor"/>;
    /// GTSTORE_SOCKET_REACTOR=0 keeps .NET's engine). Must run before the first socket is used; a
    /// value already set in the environment wins.
    /// </summary>
    private static void InlineSocketCompletions()
    {
        Transport.SocketStreams.UseReactor();
        foreach (var (name, value) in new[] { ("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1"), ("DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT", "1") })
        {
            if (Environment.GetEnvironmentVariable(name) is null)
                Environment.SetEnvironmentVariable(name, value);
        }
    }

    public static async Task<int> RunManagerAsync(string dataDirectory, string listen, ClusterConfig config)
    {
        InlineSocketCompletions();
        using var logs = Logs();
        var terminated = TerminationAsync(out var registrations);
        await using var host = ManagerHost.Start(new ManagerOptions(listen, dataDirectory, config), logs);
        // The CLI learns the bound address (a real port when 0 was asked) from this file.
        Hosting.DurableFile.WriteAtomically(Path.Combine(dataDirectory, "address"), System.Text.Encoding.UTF8.GetBytes(host.Address));
        await Task.WhenAny(terminated, host.Faulted).ConfigureAwait(false);
        foreach (var r in registrations)
            r.Dispose();
        return host.Faulted.IsFaulted ? 1 : 0;
    }

    public static async Task<int> RunNodeAsync(string managerAddress, string listen, string dataDirectory, string engine, Storage.FsyncMode fsync, string? resp, int valueCacheMb, Hosting.CpuScheduling scheduling)
    {
        InlineSocketCompletions();
        using var logs = Logs();
        // Before the host starts any thread (later threads inherit the policy); a refusal is said at
        // once, and the node runs on under the policy it had.
        if (Hosting.CpuSchedulingPolicy.Apply(scheduling) is { } schedulingFailure)
            await Console.Error.WriteLineAsync($"gtstore node: --scheduling {scheduling.ToString().ToLowerInvariant()} not applied: {schedulingFailure}").ConfigureAwait(false);
        var terminated = TerminationAsync(out var registrations);
        using var cancel = new CancellationTokenSource();
        _ = terminated.ContinueWith(_ => cancel.Cancel(), TaskScheduler.Default);
        NodeHost host;
        try
        {
            host = await NodeHost.StartAsync(new NodeOptions(managerAddress, listen, dataDirectory) { Engine = engine, Fsync = fsync, RespAddress = resp, ValueCacheBytes = (long)valueCacheMb << 20 }, logs, cancel.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
        catch (InvalidDataException e)
        {
            await Console.Error.WriteLineAsync("gtstore node: " + e.Message).ConfigureAwait(false);
            return 2;
        }
        await using (host)
        {
            await Task.WhenAny(terminated, host.Left, host.Faulted).ConfigureAwait(false);
            // Requests in flight end within their timeout; hints and handovers (data this node did
            // not stream while it was cut off) need their receivers: bounded all the same.
            if (host.Left.IsCompleted)
                await host.DrainAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        foreach (var r in registrations)
            r.Dispose();
        return host.Faulted.IsFaulted ? 1 : 0;
    }
}
