using System.Diagnostics;
using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary>What one run of the gtstore binary did.</summary>
public sealed record ProcessResult(string Command, int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed)
{
    public string Output => Stdout + Stderr;

    public override string ToString() =>
        $"`{Command}` exited {ExitCode} after {Elapsed.TotalSeconds:0.0} s\n--- stdout ---\n{Stdout}--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs the real <c>gtstore</c> binary as a child process with a wall-clock cap, and copies its
/// stdout and stderr into the test log (STYLE.md "Tests": multi-process tests own their processes
/// by pid and capture each process's output).
/// </summary>
public static class GtstoreProcess
{
    /// <summary>Default wall-clock cap of one CLI command; start and add-node wait up to 90 s themselves.</summary>
    public static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(120);

    /// <summary>
    /// The apphost the build copied into <c>gtstore-cli/</c> beside this assembly (see the csproj),
    /// or <c>GTSTORE_BIN</c> when set.
    /// </summary>
    public static string Binary { get; } = FindBinary();

    private static string FindBinary()
    {
        if (Environment.GetEnvironmentVariable("GTSTORE_BIN") is { Length: > 0 } overridden)
            return overridden;
        var path = Path.Combine(AppContext.BaseDirectory, "gtstore-cli", "gtstore");
        if (!File.Exists(path) || !File.Exists(Path.Combine(AppContext.BaseDirectory, "gtstore-cli", "gtstore.dll")))
            throw new InvalidOperationException($"the gtstore binary is not at {path}; build this test project (its csproj copies the Cli output there) or set GTSTORE_BIN");
        return path;
    }

    /// <summary>
    /// Runs <c>gtstore args...</c>; kills the child by pid if it runs past <paramref name="timeout"/>.
    /// <paramref name="started"/> learns the child's pid as soon as it runs.
    /// </summary>
    public static async Task<ProcessResult> RunAsync(ITestOutputHelper output, IEnumerable<string> args, TimeSpan? timeout = null, Action<int>? started = null)
    {
        var cap = timeout ?? CommandTimeout;
        var start = new ProcessStartInfo(Binary)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var a in args)
            start.ArgumentList.Add(a);
        // Spectre.Console would otherwise guess a terminal width and wrap long lines.
        start.Environment["COLUMNS"] = "200";
        start.Environment["NO_COLOR"] = "1";
        var command = "gtstore " + string.Join(' ', start.ArgumentList.Select(Quote));
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + command);
        var pid = process.Id;
        started?.Invoke(pid);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var timedOut = false;
        using (var deadline = new CancellationTokenSource(cap))
        {
            try
            {
                await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                timedOut = true;
                Log(output, $"[{command}] still running after {cap.TotalSeconds:0} s: killing pid {pid}");
                process.Kill(entireProcessTree: false);
                await process.WaitForExitAsync().ConfigureAwait(false);
            }
        }
        // Daemons the command started redirect their own output to log files, so the pipes close
        // when this process exits; the cap still bounds the read in case one did not.
        try
        {
            await Task.WhenAll(stdout, stderr).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"[{command}] exited but its output pipes stayed open for 10 s (a child holds them)");
        }
        var result = new ProcessResult(command, timedOut ? -1 : process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false), clock.Elapsed);
        Log(output, $"$ {command}  (exit {result.ExitCode}, {result.Elapsed.TotalSeconds:0.00} s)");
        foreach (var line in Lines(result.Stdout))
            Log(output, "  out| " + line);
        foreach (var line in Lines(result.Stderr))
            Log(output, "  err| " + line);
        if (timedOut)
            throw new TimeoutException($"{command} did not finish within {cap.TotalSeconds:0} s and was killed; its output is in the test log");
        return result;
    }

    /// <summary>Runs the command and fails the test unless it exits 0.</summary>
    public static async Task<ProcessResult> RunOkAsync(ITestOutputHelper output, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var result = await RunAsync(output, args, timeout).ConfigureAwait(false);
        if (result.ExitCode != 0)
            throw new Xunit.Sdk.XunitException($"expected exit 0 from {result}");
        return result;
    }

    /// <summary>Writes to the test log; the helper outlives its test when a fallback cleanup runs late.</summary>
    public static void Log(ITestOutputHelper output, string line)
    {
        try
        {
            output.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
            // No test is active any more: nothing to write to.
        }
    }

    private static IEnumerable<string> Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r'));

    private static string Quote(string arg) => arg.Length > 0 && !arg.Any(char.IsWhiteSpace) ? arg : $"'{arg}'";
}
