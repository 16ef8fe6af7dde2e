using System.Text;

namespace GTStore.Node.Tests;

/// <summary>
/// Redis's own tools against the RESP server (issue 4 item 2: <c>redis-cli</c> and
/// <c>redis-benchmark</c> from Debian's redis-tools, which <c>.ci/run</c> installs).
/// </summary>
public sealed class RespToolTests
{
    [RedisToolFact("redis-cli")]
    public async Task Redis_cli_pings_sets_and_gets()
    {
        var backend = new MemoryBackend();
        await using var server = RespServerTests.Start(backend);

        Assert.Equal("PONG", (await RedisCliAsync(server, "ping")).Trim());
        Assert.Equal("OK", (await RedisCliAsync(server, "set", "greeting", "hello world")).Trim());
        Assert.Equal("hello world", (await RedisCliAsync(server, "get", "greeting")).Trim());
        Assert.Equal("(integer) 1", (await RedisCliAsync(server, "--no-raw", "del", "greeting")).Trim());
        Assert.Equal("(nil)", (await RedisCliAsync(server, "--no-raw", "get", "greeting")).Trim());
        Assert.Contains("redis_version:7.0.0", await RedisCliAsync(server, "info", "server"));
    }

    [RedisToolFact("redis-cli")]
    public async Task Redis_cli_runs_commands_read_from_standard_input()
    {
        await using var server = RespServerTests.Start(new MemoryBackend());

        string output = await RedisTools.RunAsync("redis-cli", ["-p", Port(server)], "SET a 1\nMSET b 2 c 3\nMGET a b c missing\nFOO bar\nPING\n");
        var lines = output.Split('\n');
        Assert.Equal(["OK", "OK", "1", "2", "3", ""], lines[..6]);
        Assert.Contains("ERR unknown command 'FOO', with args beginning with: 'bar' ", output);
        Assert.Equal("PONG", lines.Last(line => line.Length > 0));
    }

    [RedisToolFact("redis-cli")]
    public async Task Redis_cli_pipe_mode_sends_many_commands_and_gets_every_reply()
    {
        var backend = new MemoryBackend();
        await using var server = RespServerTests.Start(backend);

        var input = new StringBuilder();
        for (int i = 0; i < 5000; i++)
        {
            input.Append($"*3\r\n$3\r\nSET\r\n${$"key:{i}".Length}\r\nkey:{i}\r\n${$"value:{i}".Length}\r\nvalue:{i}\r\n");
        }

        string output = await RedisTools.RunAsync("redis-cli", ["-p", Port(server), "--pipe"], input.ToString());
        Assert.Contains("errors: 0, replies: 5000", output);
        Assert.Equal(5000, backend.Count);
    }

    [RedisToolFact("redis-benchmark")]
    public async Task Redis_benchmark_runs_set_and_get()
    {
        var backend = new MemoryBackend();
        await using var server = RespServerTests.Start(backend);

        string output = await RedisTools.RunAsync("redis-benchmark", ["-h", "127.0.0.1", "-p", Port(server), "-t", "set,get", "-n", "2000", "-c", "10", "-q"]);
        Assert.Matches(@"SET: [\d.]+ requests per second", output);
        Assert.Matches(@"GET: [\d.]+ requests per second", output);

        string pipelined = await RedisTools.RunAsync("redis-benchmark", ["-h", "127.0.0.1", "-p", Port(server), "-t", "set,get", "-n", "2000", "-c", "4", "-P", "16", "-r", "1000", "-q"]);
        Assert.Matches(@"SET: [\d.]+ requests per second", pipelined);
        Assert.Matches(@"GET: [\d.]+ requests per second", pipelined);
    }

    private static string Port(Resp.RespServer server) => server.Address.Split(':')[1];

    private static Task<string> RedisCliAsync(Resp.RespServer server, params string[] args) =>
        RedisTools.RunAsync("redis-cli", ["-h", "127.0.0.1", "-p", Port(server), .. args]);
}
