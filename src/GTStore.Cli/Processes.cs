using System.Diagnostics;
using System.Runtime.InteropServices;

namespace GTStore.Cli;

/// <summary>
/// Starts daemons as detached background processes (own session, output to a log file) and
/// signals them by pid, after checking that the pid still belongs to a gtstore process.
/// </summary>
public static partial class Processes
{
    public const int SigKill = 9;
    public const int SigTerm = 15;

    /// <summary>The command that runs this same gtstore binary (apphost, or dotnet + dll).</summary>
    public static (string FileName, string[] Prefix) Self()
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell this process's executable");
        if (Path.GetFileNameWithoutExtension(process) == "dotnet")
            return (process, [typeof(Processes).Assembly.Location]);
        return (process, []);
    }

    /// <summary>
    /// Starts <c>gtstore args...</c> in its own session with stdout and stderr appended to
    /// <paramref name="logFile"/>. The returned process (same pid: setsid and sh exec) lets the
    /// caller, its parent, tell reliably whether it exited.
    /// </summary>
    public static Process StartDaemon(IEnumerable<string> args, string logFile)
    {
        var (fileName, prefix) = Self();
        Directory.CreateDirectory(Path.GetDirectoryName(logFile)!);
        var start = new ProcessStartInfo("setsid") { UseShellExecute = false };
        start.ArgumentList.Add("/bin/sh");
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec \"$0\" \"$@\" >>\"$GTSTORE_LOG\" 2>&1 </dev/null");
        start.ArgumentList.Add(fileName);
        foreach (var a in prefix.Concat(args))
            start.ArgumentList.Add(a);
        start.Environment["GTSTORE_LOG"] = logFile;
        return Process.Start(start) ?? throw new CliException("could not start a gtstore process", 1);
    }

    /// <summary>True when <paramref name="pid"/> is a live gtstore process (not a reused pid).</summary>
    public static bool IsGtstore(int pid)
    {
        if (pid <= 0)
            return false;
        try
        {
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            return cmdline.Contains("gtstore", StringComparison.Ordinal) && State(pid) != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// True when <paramref name="pid"/> is gone or a zombie. Unlike <see cref="IsGtstore"/> this is
    /// never true of a process that is still starting: while it execs (setsid, then sh, then
    /// gtstore) its command line can read as empty.
    /// </summary>
    public static bool HasExited(int pid)
    {
        try
        {
            return State(pid) == 'Z';
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>The process state letter from <c>/proc/PID/stat</c> (R, S, Z...); throws <see cref="IOException"/> when the pid is gone.</summary>
    private static char State(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[stat.LastIndexOf(')') + 2];
    }

    public static bool Signal(int pid, int signal) => IsGtstore(pid) && Kill(pid, signal) == 0;

    /// <summary>Waits until <paramref name="pid"/> is gone; false if it still runs at the deadline.</summary>
    public static async Task<bool> WaitExitAsync(int pid, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (IsGtstore(pid))
        {
            if (DateTime.UtcNow > deadline)
                return false;
            await Task.Delay(50).ConfigureAwait(false); // Polling /proc: a foreign process has no exit event to await.
        }
        return true;
    }

    /// <summary>SIGTERM, then SIGKILL if the process has not exited within <paramref name="grace"/>.</summary>
    public static async Task StopAsync(int pid, TimeSpan grace)
    {
        if (!Signal(pid, SigTerm))
            return;
        if (!await WaitExitAsync(pid, grace).ConfigureAwait(false))
        {
            Signal(pid, SigKill);
            await WaitExitAsync(pid, TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
