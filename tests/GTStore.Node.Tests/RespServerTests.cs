using System.Text;
using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Node.Resp;
using Microsoft.Extensions.Logging.Abstractions;

namespace GTStore.Node.Tests;

/// <summary>
/// The RESP server over a bare socket (issue 4 item 1: the command set, pipelining, binary-safe
/// keys and values; wrong arity, unknown command and oversize value get Redis-style errors and
/// the connection keeps serving; a malformed request gets one error and the connection closes).
/// </summary>
public sealed class RespServerTests
{
    [Fact]
    public async Task Wrong_arity_and_unknown_command_get_redis_errors_and_the_connection_keeps_serving()
    {
        await using var server = Start(new MemoryBackend());
        await using var client = await RawClient.ConnectAsync(server.Address);

        await client.SendAsync("*1\r\n$3\r\nGET\r\n");
        Assert.Equal("-ERR wrong number of arguments for 'get' command", await client.ReadReplyAsync());
        await client.SendAsync("*3\r\n$3\r\nFOO\r\n$3\r\nbar\r\n$1\r\nx\r\n");
        Assert.Equal("-ERR unknown command 'FOO', with args beginning with: 'bar' 'x' ", await client.ReadReplyAsync());
        await client.SendAsync("MSET a 1 b\r\n");
        Assert.Equal("-ERR wrong number of arguments for 'mset' command", await client.ReadReplyAsync());
        await client.SendAsync("PING\r\n");
        Assert.Equal("+PONG", await client.ReadReplyAsync());
    }

    [Fact]
    public async Task A_malformed_request_gets_exactly_one_protocol_error_and_the_connection_closes()
    {
        await using var server = Start(new MemoryBackend());
        await using var client = await RawClient.ConnectAsync(server.Address);

        await client.SendAsync("PING\r\n*1\r\n$abc\r\nPING\r\n");
        Assert.Equal(
            "+PONG\r\n-ERR Protocol error: invalid bulk length: unexpected 'a'\r\n",
            await client.ReadToEndAsync());
    }

    [Fact]
    public async Task An_oversize_bulk_length_is_refused_from_its_header_without_the_body()
    {
        var backend = new MemoryBackend();
        await using var server = Start(backend, valueBytesMax: 1000);
        await using var client = await RawClient.ConnectAsync(server.Address);

        // Announces a 2 GB value and sends none of it: the answer must come from the header alone.
        await client.SendAsync("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000000\r\n");
        string reply = await client.ReadToEndAsync();
        Assert.StartsWith("-ERR Protocol error: invalid bulk length: 2000000000", reply);
        Assert.Single(reply.Split("\r\n", StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(0, backend.Requests);
    }

    [Fact]
    public async Task An_oversize_key_or_value_gets_an_error_naming_the_limit_and_the_connection_keeps_serving()
    {
        var backend = new MemoryBackend();
        await using var server = Start(backend, keyBytesMax: 10, valueBytesMax: 1000);
        await using var client = await RawClient.ConnectAsync(server.Address);

        await client.SendAsync($"SET k {new string('v', 1001)}\r\n");
        Assert.Equal("-ERR value of 1001 bytes exceeds the limit of 1000 bytes", await client.ReadReplyAsync());
        await client.SendAsync($"GET {new string('k', 11)}\r\n");
        Assert.Equal("-ERR key of 11 bytes exceeds the limit of 10 bytes", await client.ReadReplyAsync());
        await client.SendAsync($"MSET a 1 b {new string('v', 1001)}\r\n");
        Assert.Equal("-ERR value of 1001 bytes exceeds the limit of 1000 bytes", await client.ReadReplyAsync());
        await client.SendAsync("PING\r\n");
        Assert.Equal("+PONG", await client.ReadReplyAsync());
        Assert.Equal(0, backend.Requests);
    }

    [Fact]
    public async Task Pipelined_writes_and_reads_of_one_key_keep_their_order_even_when_writes_are_slow()
    {
        var backend = new MemoryBackend
        {
            Hook = async request =>
            {
                if (request.Op == ClientOp.Put)
                {
                    await Task.Delay(Random.Shared.Next(5, 30));
                }

                return null;
            },
        };
        await using var server = Start(backend);
        await using var client = await RawClient.ConnectAsync(server.Address);

        var pipeline = new StringBuilder();
        for (int i = 0; i < 20; i++)
        {
            pipeline.Append(Command("SET", "k", $"v{i}")).Append(Command("GET", "k"));
        }

        await client.SendAsync(pipeline.ToString());
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal("+OK", await client.ReadReplyAsync());
            Assert.Equal($"$v{i}", await client.ReadReplyAsync());
        }
    }

    [Fact]
    public async Task Pipelined_requests_on_different_keys_run_concurrently_and_reply_in_request_order()
    {
        // The read of "a" cannot finish until the read of "b" has started: run one at a time, the pipeline would hang.
        var bStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var backend = new MemoryBackend
        {
            Hook = async request =>
            {
                string key = Encoding.ASCII.GetString(request.Key);
                if (key == "b")
                {
                    bStarted.TrySetResult();
                }
                else if (key == "a")
                {
                    await bStarted.Task.WaitAsync(TimeSpan.FromSeconds(5));
                }

                return new ClientReply(ReplyStatus.Ok, new NodeId(7), new VersionedValue(default, Encoding.ASCII.GetBytes(key + "!")), null);
            },
        };
        await using var server = Start(backend);
        await using var client = await RawClient.ConnectAsync(server.Address);

        await client.SendAsync(Command("GET", "a") + Command("GET", "b") + Command("PING"));
        Assert.Equal("$a!", await client.ReadReplyAsync());
        Assert.Equal("$b!", await client.ReadReplyAsync());
        Assert.Equal("+PONG", await client.ReadReplyAsync());
    }

    [Fact]
    public async Task A_large_request_arriving_in_small_pieces_is_read_whole()
    {
        var backend = new MemoryBackend();
        await using var server = Start(backend);
        await using var client = await RawClient.ConnectAsync(server.Address);

        var args = new List<string> { "MSET" };
        for (int i = 0; i < 2000; i++)
        {
            args.Add($"key:{i}");
            args.Add(new string((char)('a' + (i % 26)), i % 50));
        }

        var wire = Encoding.Latin1.GetBytes(Command([.. args]) + "PING\r\n");
        for (int offset = 0; offset < wire.Length; offset += 100)
        {
            await client.SendAsync(wire[offset..Math.Min(offset + 100, wire.Length)]);
        }

        Assert.Equal("+OK", await client.ReadReplyAsync());
        Assert.Equal("+PONG", await client.ReadReplyAsync());
        Assert.Equal(2000, backend.Count);
        Assert.Equal(Encoding.Latin1.GetBytes(new string('x', 49)), backend.Get(Encoding.Latin1.GetBytes("key:1999")));
    }

    [Fact]
    public async Task Failed_and_unknown_outcomes_are_errors_that_say_which()
    {
        var backend = new MemoryBackend
        {
            Hook = request => Task.FromResult<ClientReply?>(Encoding.ASCII.GetString(request.Key) switch
            {
                "failed" => new ClientReply(ReplyStatus.Failed, NodeId.None, null, "2 of 3 replicas reachable, write quorum 3"),
                "unknown" => new ClientReply(ReplyStatus.Unknown, NodeId.None, null, "timed out after 2000 ms"),
                "throws" => throw new InvalidOperationException("boom"),
                _ => null,
            }),
        };
        await using var server = Start(backend);
        await using var client = await RawClient.ConnectAsync(server.Address);

        await client.SendAsync("SET failed v\r\nSET unknown v\r\nGET throws\r\nMGET x failed\r\nPING\r\n");
        Assert.Equal("-ERR 2 of 3 replicas reachable, write quorum 3", await client.ReadReplyAsync());
        Assert.Equal("-ERR outcome unknown: timed out after 2000 ms", await client.ReadReplyAsync());
        Assert.Equal("-ERR internal error: boom", await client.ReadReplyAsync());
        Assert.Equal("-ERR 2 of 3 replicas reachable, write quorum 3", await client.ReadReplyAsync());
        Assert.Equal("+PONG", await client.ReadReplyAsync());
    }

    [Fact]
    public async Task Key_commands_answer_as_redis_does()
    {
        var backend = new MemoryBackend();
        await using var server = Start(backend);
        await using var client = await RawClient.ConnectAsync(server.Address);

        (string Request, string Reply)[] script =
        [
            ("SET k v", "+OK"),
            ("GET k", "$v"),
            ("GET missing", "$nil"),
            ("SET k w NX", "$nil"),
            ("SET n 1 NX", "+OK"),
            ("SET absent 1 XX", "$nil"),
            ("SETNX n 2", ":0"),
            ("SETNX m 2", ":1"),
            ("SET k w XX GET", "$v"),
            ("GET k", "$w"),
            ("SET k v KEEPTTL", "+OK"),
            ("SET k v EX 10", "-ERR SET EX (expiry) is not supported by GTStore: keys do not expire"),
            ("SET k v px 10", "-ERR SET PX (expiry) is not supported by GTStore: keys do not expire"),
            ("SET k v EXAT 1900000000", "-ERR SET EXAT (expiry) is not supported by GTStore: keys do not expire"),
            ("SET k v NX XX", "-ERR syntax error"),
            ("SET k v EX", "-ERR syntax error"),
            ("MSET a 1 b 2 a 3", "+OK"),
            ("MGET a b missing", "*[$3, $2, $nil]"),
            ("EXISTS a b missing a", ":3"),
            ("DEL a missing a b", ":2"),
            ("EXISTS a b", ":0"),
            ("SET c 3", "+OK"),
            ("UNLINK c missing", ":1"),
            ("DBSIZE", ":3"),
            ("ECHO \"hello world\"", "$hello world"),
            ("PING hi", "$hi"),
            ("PING a b", "-ERR wrong number of arguments for 'ping' command"),
        ];
        foreach (var (request, reply) in script)
        {
            await client.SendAsync(request + "\r\n");
            Assert.Equal((request, reply), (request, await client.ReadReplyAsync()));
        }
    }

    [Fact]
    public async Task Connection_commands_answer_what_clients_and_tools_ask()
    {
        await using var server = Start(new MemoryBackend());
        await using var client = await RawClient.ConnectAsync(server.Address);

        (string Request, string Reply)[] script =
        [
            ("SELECT 0", "+OK"),
            ("SELECT 1", "-ERR DB index is out of range"),
            ("SELECT x", "-ERR value is not an integer or out of range"),
            ("HELLO 3", "-NOPROTO unsupported protocol version"),
            ("HELLO x", "-ERR Protocol version is not an integer or out of range"),
            ("HELLO 2 AUTH someone secret", "-WRONGPASS invalid username-password pair or user is disabled."),
            ("CLIENT GETNAME", "$nil"),
            ("CLIENT SETNAME app-1", "+OK"),
            ("CLIENT GETNAME", "$app-1"),
            ("CLIENT SETNAME \"a b\"", "-ERR Client names cannot contain spaces, newlines or special characters."),
            ("CLIENT SETINFO LIB-NAME tests", "+OK"),
            ("CLIENT NOPE", "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP."),
            ("CONFIG GET save", "*[$save, $]"),
            ("CONFIG GET appendonly", "*[$appendonly, $no]"),
            ("CONFIG GET nothing-like-this", "*[]"),
            ("CONFIG GET", "-ERR wrong number of arguments for 'config|get' command"),
            ("COMMAND DOCS", "*[]"),
            ("COMMAND COUNT", ":20"),
            ("COMMAND INFO get nope", "*[*[$get, :2, *[+readonly], :1, :1, :1], *nil]"),
            ("AUTH secret", "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
            ("AUTH default secret", "+OK"),
            ("AUTH someone secret", "-WRONGPASS invalid username-password pair or user is disabled."),
            ("AUTH default secret extra", "-ERR syntax error"),
        ];
        foreach (var (request, reply) in script)
        {
            await client.SendAsync(request + "\r\n");
            Assert.Equal((request, reply), (request, await client.ReadReplyAsync()));
        }

        await client.SendAsync("HELLO 2 AUTH default anything SETNAME renamed\r\n");
        string hello = await client.ReadReplyAsync();
        Assert.StartsWith("*[$server, $redis, $version, $7.0.0, $proto, :2, $id, :", hello);
        await client.SendAsync("CLIENT INFO\r\n");
        Assert.Contains("name=renamed", await client.ReadReplyAsync());
        await client.SendAsync("CONFIG GET *max*\r\n");
        Assert.Contains("$maxclients", await client.ReadReplyAsync());
    }

    [Fact]
    public async Task Info_reports_redis_compatible_fields_and_this_nodes_keys()
    {
        var backend = new MemoryBackend();
        await using var server = Start(backend);
        await using var client = await RawClient.ConnectAsync(server.Address);

        await client.SendAsync("MSET a 1 b 2\r\nINFO\r\nINFO keyspace\r\nINFO nope\r\n");
        Assert.Equal("+OK", await client.ReadReplyAsync());
        string info = await client.ReadReplyAsync();
        Assert.Contains("# Server\r\nredis_version:7.0.0\r\n", info);
        Assert.Contains("redis_mode:standalone\r\n", info);
        Assert.Contains($"tcp_port:{server.Address.Split(':')[1]}\r\n", info);
        Assert.Contains("role:master\r\n", info);
        Assert.Contains("# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n", info);
        Assert.Contains("node_id:7\r\n", info);
        Assert.Contains("\r\nhints:4\r\nhandovers:2\r\n", info);
        var allocated = System.Text.RegularExpressions.Regex.Match(info, "\r\ngc_allocated_bytes:([0-9]+)\r\n");
        Assert.True(allocated.Success && long.Parse(allocated.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 0, info);
        Assert.Matches("\r\ngc_gen0_collections:[0-9]+\r\n", info);
        Assert.Matches("\r\ngc_heap_committed_bytes:[0-9]+\r\ngc_heap_fragmented_bytes:[0-9]+\r\n", info);
        Assert.Equal("$# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n", await client.ReadReplyAsync());
        Assert.Equal("$", await client.ReadReplyAsync());
    }

    [Fact]
    public async Task Quit_replies_ok_skips_what_follows_and_closes()
    {
        var backend = new MemoryBackend();
        await using var server = Start(backend);
        await using var client = await RawClient.ConnectAsync(server.Address);

        await client.SendAsync("PING\r\nQUIT\r\nSET after quit\r\n");
        Assert.Equal("+PONG\r\n+OK\r\n", await client.ReadToEndAsync());
        Assert.Equal(0, backend.Requests);
    }

    [Fact]
    public async Task Keys_and_values_are_binary_safe()
    {
        var backend = new MemoryBackend();
        await using var server = Start(backend);
        await using var client = await RawClient.ConnectAsync(server.Address);

        var key = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var value = Encoding.Latin1.GetBytes("\r\n$-1\r\n*0\r\n\0\xff");
        await client.SendAsync(Command(Encoding.Latin1.GetBytes("SET"), key, value));
        Assert.Equal("+OK", await client.ReadReplyAsync());
        Assert.Equal(value, backend.Get(key));
        await client.SendAsync(Command(Encoding.Latin1.GetBytes("GET"), key));
        Assert.Equal("$" + Encoding.Latin1.GetString(value), await client.ReadReplyAsync());
    }

    [Fact]
    public async Task Disposing_the_server_closes_its_connections()
    {
        var server = Start(new MemoryBackend());
        await using var client = await RawClient.ConnectAsync(server.Address);
        await client.SendAsync("PING\r\n");
        Assert.Equal("+PONG", await client.ReadReplyAsync());

        await server.DisposeAsync();
        Assert.Equal("", await client.ReadToEndAsync());
        Assert.Equal(0, server.ConnectionCount);
    }

    [Fact]
    public void A_unix_socket_address_is_refused_with_a_clear_error()
    {
        var error = Assert.Throws<ArgumentException>(() => RespServer.Start("/tmp/gtstore-resp.sock", new MemoryBackend().Backend(), NullLogger.Instance));
        Assert.Contains("TCP host:port", error.Message);
    }

    internal static RespServer Start(MemoryBackend backend, int keyBytesMax = Limits.KeyBytesMaxDefault, int valueBytesMax = Limits.ValueBytesMaxDefault) =>
        RespServer.Start("127.0.0.1:0", backend.Backend(keyBytesMax, valueBytesMax), NullLogger.Instance);

    private static string Command(params string[] args) =>
        Encoding.Latin1.GetString(Command(args.Select(Encoding.Latin1.GetBytes).ToArray()));

    private static byte[] Command(params byte[][] args)
    {
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        GTStore.Protocol.Resp.RespWriter.WriteCommand(output, args);
        return output.WrittenSpan.ToArray();
    }
}
