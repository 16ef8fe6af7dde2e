using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using GTStore.Protocol;
using GTStore.Transport;
using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary>Bytes no gtstore peer would send, written with a raw socket to live daemons.</summary>
[Collection(ProcessesCollection.Name)]
public sealed class MalformedFrameTests(ITestOutputHelper output)
{
    /// <summary>How long a daemon may take to answer a malformed frame and close.</summary>
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Most bytes read back from a daemon before it must have closed: one error frame fits easily.</summary>
    private const int ReplyBytesMax = 64 * 1024;

    /// <summary>ClientRequest's frame type, taken from the codec rather than hard-coded.</summary>
    private static readonly ushort ClientRequestType =
        MessageCodec.TypeOf(new Core.Messages.ClientRequest(Core.Messages.ClientOp.Get, [1], null));

    /// <summary>Malformed inputs, one comment per case, and a word the error must contain.</summary>
    private static readonly (string Name, byte[] Bytes, string Expected)[] Cases =
    [
        // A length prefix of 0xFFFFFFFF announces a 4 GiB body: refused at once, without waiting for it.
        ("length prefix 0xFFFFFFFF", [0xFF, 0xFF, 0xFF, 0xFF], "exceeds the limit"),
        // A body of 3 bytes cannot hold the 10-byte body header (u16 type + u64 request id).
        ("body shorter than its header", LengthPrefixOnly(3), "shorter than"),
        // A well-framed ClientRequest whose payload is one garbage byte: the message cannot be decoded.
        ("undecodable client request", Framed(ClientRequestType, [0xEE]), ""),
    ];

    // DESIGN.md "Layers": Protocol "rejects malformed input with a clear error; it never crashes
    // on any byte sequence." STYLE.md "Code": "on malformed input ... the connection answers one
    // error and closes."
    [Fact(Timeout = 120_000)]
    public async Task A_malformed_frame_closes_its_connection_and_the_daemon_keeps_serving()
    {
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "3", "--rep", "2");
        var before = await cluster.StatusAsync();
        var node = TestCluster.Nodes(before)[0];
        var nodeAddress = node["address"]!.GetValue<string>();

        foreach (var (name, bytes, expected) in Cases)
        {
            var error = await SendAndReadUntilClosedAsync(nodeAddress, bytes);
            output.WriteLine($"{node["id"]}, {name}: {error}");
            Assert.Contains(expected, error, StringComparison.Ordinal);
        }
        var managerError = await SendAndReadUntilClosedAsync(cluster.ManagerAddress, Cases[0].Bytes);
        output.WriteLine($"manager, {Cases[0].Name}: {managerError}");
        Assert.Contains(Cases[0].Expected, managerError, StringComparison.Ordinal);

        // Every request below goes through the attacked node at least once: coordinators and
        // forwarders vary, and status asks each node for its counts.
        for (var i = 0; i < 6; i++)
        {
            await cluster.RunOkAsync("client", "--put", $"after-{i}", "--val", $"v{i}");
            Assert.Matches($"^after-{i}, v{i}, server\\d+$", (await cluster.RunOkAsync("client", "--get", $"after-{i}")).Stdout.Trim());
        }
        var after = await cluster.WaitForStatusAsync(s => TestCluster.Settled(s, 3) && TestCluster.KeySum(s) == 2 * 6, "3 nodes up holding 2 copies of 6 keys");
        Assert.Equal(
            TestCluster.Nodes(before).Select(n => n["pid"]!.GetValue<int>()),
            TestCluster.Nodes(after).Select(n => n["pid"]!.GetValue<int>()));
        cluster.Passed();
    }

    /// <summary>
    /// Sends <paramref name="bytes"/>, then reads until the peer closes. Returns the text of the
    /// ProtocolError frame it answered with; fails if it sent anything else or did not close.
    /// </summary>
    private static async Task<string> SendAndReadUntilClosedAsync(string address, byte[] bytes)
    {
        var endpoint = Endpoints.Parse(address);
        using var socket = endpoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var deadline = new CancellationTokenSource(CloseTimeout);
        await socket.ConnectAsync(endpoint, deadline.Token);
        await socket.SendAsync(bytes, SocketFlags.None, deadline.Token);

        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
                if (n == 0)
                    break;
                received.Write(buffer, 0, n);
                Assert.True(received.Length <= ReplyBytesMax, $"{address} sent over {ReplyBytesMax} bytes without closing");
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{address} did not close the connection within {CloseTimeout.TotalSeconds:0} s after a malformed frame ({received.Length} bytes received)");
        }

        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(received.ToArray()));
        Assert.True(FrameCodec.TryReadFrame(ref reader, out var frame), $"{address} closed after {received.Length} bytes that are not one whole frame");
        Assert.True(frame.IsProtocolError, $"{address} answered frame type {frame.Type:X4}, not ProtocolError");
        Assert.Equal(0L, reader.Remaining);
        return FrameCodec.DecodeErrorMessage(frame.Payload.Span);
    }

    private static byte[] LengthPrefixOnly(uint bodyLength)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, bodyLength);
        return bytes;
    }

    private static byte[] Framed(ushort type, byte[] payload)
    {
        var bytes = new byte[4 + 2 + 8 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)(2 + 8 + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(4), type);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(6), 1);
        payload.CopyTo(bytes, 14);
        return bytes;
    }
}
