using System.Diagnostics;

namespace GTStore.Node.Tests;

/// <summary>Runs Redis's command-line tools (redis-cli, redis-benchmark) for tests; shared with the integration tests.</summary>
public static class RedisTools
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Runs a tool to completion within <see cref="ToolTimeout"/>; fails on a non-zero exit, showing its output.</summary>
    public static async Task<string> RunAsync(string tool, string[] args, string? input = null)
    {
        var start = new ProcessStartInfo(tool)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input);
        }

        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(ToolTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish within {ToolTimeout}; output so far:\n{await stdout}\n{await stderr}");
        }

        string output = await stdout;
        Assert.True(process.ExitCode == 0, $"{tool} {string.Join(' ', args)} exited with {process.ExitCode}:\n{output}\n{await stderr}");
        return output;
    }
}
