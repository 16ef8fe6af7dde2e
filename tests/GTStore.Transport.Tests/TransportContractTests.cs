using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Threading.Channels;
using GTStore.Core;
using GTStore.Protocol;

namespace GTStore.Transport.Tests;

/// <summary>
/// The contract every transport keeps (DESIGN.md "Transport": persistent connections, many
/// requests in flight matched by request id, batched writes, bounded queues; "Protocol": no byte
/// sequence crashes the process). One subclass per socket family runs the whole suite.
/// </summary>
public abstract class TransportContractTests : IAsyncLifetime
{
    /// <summary>Cap on every wait: a hung test fails instead of hanging the run.</summary>
    protected static readonly TimeSpan Cap = TimeSpan.FromSeconds(10);

    private const ushort TypeEcho = 1;
    private const ushort TypeOneWay = 2;
    private const ushort TypeHold = 3;
    private const ushort TypeUnreadable = 4;
    private const ushort TypeAnswerInReverse = 5;
    private const ushort TypeStall = 6;
    private const int ReverseBatch = 1000;

    /// <summary>Frame types the garbage test sends: handled ones that finish, unknown ones, and ProtocolError.</summary>
    private static readonly ushort[] GarbageTypes = [0, TypeEcho, TypeOneWay, TypeHold, TypeUnreadable, 999, FrameTypes.ProtocolError];

    private readonly Channel<Frame> _oneWay = Channel.CreateUnbounded<Frame>();
    private readonly Channel<(FrameConnection Connection, Frame Frame)> _held = Channel.CreateUnbounded<(FrameConnection, Frame)>();
    private readonly Channel<FrameConnection> _accepted = Channel.CreateUnbounded<FrameConnection>();
    private readonly List<Frame> _reverseBatch = [];
    private readonly TaskCompletionSource _stallStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stallReleased = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _acceptedCount;

    private FrameListener? _listener;

    protected FrameListener Listener => _listener ?? throw new InvalidOperationException("listener not started");

    /// <summary>The address the listener binds (port 0 for TCP).</summary>
    protected abstract string BindAddress { get; }

    /// <summary>Whether the connections of this suite are served by GTStore's epoll reactor instead of .NET's socket engine.</summary>
    protected virtual bool Reactor => false;

    public Task InitializeAsync()
    {
        ChooseEngine();
        _listener = FrameListener.Start(BindAddress, ServeAsync, OnConnected);
        return Task.CompletedTask;
    }

    public virtual async Task DisposeAsync()
    {
        _stallReleased.TrySetResult();
        if (_listener is not null)
        {
            await _listener.DisposeAsync().AsTask().WaitAsync(Cap);
        }
    }

    [Fact]
    public async Task Request_gets_the_response_carrying_its_request_id()
    {
        await using var client = await ConnectAsync();
        var reply = await client.RequestAsync(TypeEcho, new byte[] { 1, 2, 3 }, Cap);
        Assert.Equal(TypeEcho, reply.Type);
        Assert.NotEqual(0UL, reply.RequestId);
        Assert.Equal(new byte[] { 1, 2, 3 }, reply.Payload.ToArray());
    }

    [Fact]
    public async Task Thousand_concurrent_requests_on_one_connection_each_get_their_own_response()
    {
        // The server holds all 1000 requests and answers them in reverse order, so only the
        // request id can match a response to its request.
        await using var client = await ConnectAsync();
        var random = new Random(1000);
        var payloads = Enumerable.Range(0, ReverseBatch).Select(i => RandomPayload(random, i)).ToArray();
        var requests = payloads.Select(p => client.RequestAsync(TypeAnswerInReverse, p, Cap)).ToArray();
        var replies = await Task.WhenAll(requests).WaitAsync(Cap);
        for (int i = 0; i < ReverseBatch; i++)
        {
            Assert.Equal(payloads[i], replies[i].Payload.ToArray());
        }

        Assert.Equal(ReverseBatch, replies.Select(r => r.RequestId).Distinct().Count());
    }

    [Fact]
    public async Task One_way_messages_arrive_in_the_order_sent()
    {
        const int count = 1000;
        await using var client = await ConnectAsync();
        for (int i = 0; i < count; i++)
        {
            await client.SendAsync(TypeOneWay, 0, BitConverter.GetBytes(i));
        }

        for (int i = 0; i < count; i++)
        {
            var frame = await _oneWay.Reader.ReadAsync().AsTask().WaitAsync(Cap);
            Assert.Equal(0UL, frame.RequestId);
            Assert.Equal(i, BitConverter.ToInt32(frame.Payload.Span));
        }
    }

    [Fact]
    public async Task Response_after_timeout_is_dropped_and_the_connection_keeps_working()
    {
        var clientReceived = new ConcurrentQueue<Frame>();
        await using var client = await ConnectAsync((_, frame) =>
        {
            clientReceived.Enqueue(frame);
            return ValueTask.CompletedTask;
        });

        var held = client.RequestAsync(TypeHold, new byte[] { 1 }, TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAsync<TimeoutException>(() => held.WaitAsync(Cap));

        var (server, request) = await _held.Reader.ReadAsync().AsTask().WaitAsync(Cap);
        await server.SendAsync(TypeEcho, request.RequestId, new byte[] { 0xDE, 0xAD });

        // Frames arrive in order, so this reply comes after the late one has been read.
        var reply = await client.RequestAsync(TypeEcho, new byte[] { 2 }, Cap);
        Assert.Equal(new byte[] { 2 }, reply.Payload.ToArray());
        Assert.Empty(clientReceived);
        Assert.False(client.IsClosed);
    }

    [Fact]
    public async Task Closing_the_server_fails_pending_requests_with_ConnectionClosedException()
    {
        var client = await ConnectAsync();
        var pending = client.RequestAsync(TypeHold, new byte[] { 1 }, TimeSpan.FromMinutes(5));
        await _held.Reader.ReadAsync().AsTask().WaitAsync(Cap);

        await Listener.DisposeAsync().AsTask().WaitAsync(Cap);

        var error = await Assert.ThrowsAsync<ConnectionClosedException>(() => pending.WaitAsync(Cap));
        Assert.Contains("closed by the remote end", error.Message);
        await client.Completion.WaitAsync(Cap);
        Assert.True(client.IsClosed);
        await Assert.ThrowsAsync<ConnectionClosedException>(() => client.SendAsync(TypeOneWay, 0, new byte[] { 1 }).AsTask());
        await Assert.ThrowsAsync<ConnectionClosedException>(() => ConnectAsync());
    }

    [Fact]
    public async Task Sending_to_a_peer_that_stops_reading_waits_once_the_queue_is_full()
    {
        // The server's handler stalls, so its reader stops and the socket buffers fill; then the
        // client's send queue fills (Limits.ConnectionSendQueueFramesMax) and senders must wait.
        var client = await ConnectAsync();
        await client.SendAsync(TypeStall, 0, Array.Empty<byte>());
        await _stallStarted.Task.WaitAsync(Cap);

        var payload = new byte[64 * 1024];
        const int framesMax = 100_000;
        ValueTask blocked = default;
        int sent = 0;
        while (sent < framesMax)
        {
            blocked = client.SendAsync(TypeOneWay, 0, payload);
            if (!blocked.IsCompleted)
            {
                break;
            }

            sent++;
        }

        Assert.True(sent >= Limits.ConnectionSendQueueFramesMax, $"the sender waited after {sent} frames");
        Assert.True(sent < framesMax, "the sender never waited");

        client.Abort();
        await Assert.ThrowsAsync<ConnectionClosedException>(() => blocked.AsTask().WaitAsync(Cap));
    }

    [Fact]
    public async Task Oversize_length_gets_a_ProtocolError_naming_the_limit_then_the_connection_closes()
    {
        await using var bystander = await ConnectAsync();
        using (var raw = await ConnectRawAsync())
        {
            var header = new byte[FrameCodec.LengthPrefixBytes + FrameCodec.BodyHeaderBytes];
            BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)Limits.FrameBytesMax + 1);
            await raw.SendAsync(header);

            var received = await ReadToEndAsync(raw);

            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(received));
            Assert.True(FrameCodec.TryReadFrame(ref reader, out var error));
            Assert.True(error.IsProtocolError);
            Assert.Equal(
                $"frame body of {Limits.FrameBytesMax + 1} bytes exceeds the limit of {Limits.FrameBytesMax} bytes",
                FrameCodec.DecodeErrorMessage(error.Payload.Span));
            Assert.True(reader.End, "nothing may follow the ProtocolError frame");
        }

        // The listener keeps serving: both a connection that was open and a new one.
        Assert.Equal(new byte[] { 7 }, (await bystander.RequestAsync(TypeEcho, new byte[] { 7 }, Cap)).Payload.ToArray());
        await using var client = await ConnectAsync();
        Assert.Equal(new byte[] { 8 }, (await client.RequestAsync(TypeEcho, new byte[] { 8 }, Cap)).Payload.ToArray());
    }

    [Fact]
    public async Task Unreadable_request_is_answered_with_RemoteProtocolException_and_the_connection_closes()
    {
        var client = await ConnectAsync();
        var error = await Assert.ThrowsAsync<RemoteProtocolException>(
            () => client.RequestAsync(TypeUnreadable, new byte[] { 1 }, Cap));
        Assert.Contains("test message is unreadable", error.Message);
        await client.Completion.WaitAsync(Cap);
    }

    [Fact]
    public async Task Random_garbage_never_crashes_the_listener()
    {
        // Seeded: a failure replays. Each sequence goes on its own connection, which the
        // listener must close (or keep serving) without harm to the process or other connections.
        const int seed = 20_240_601;
        var random = new Random(seed);
        for (int i = 0; i < 1000; i++)
        {
            var garbage = Garbage(random);
            using var raw = await ConnectRawAsync();
            try
            {
                await raw.SendAsync(garbage);
                raw.Shutdown(SocketShutdown.Send);
                await ReadToEndAsync(raw);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
            {
                // The listener may reset a connection it gave up on; that is not a crash.
            }
        }

        await using var client = await ConnectAsync();
        var reply = await client.RequestAsync(TypeEcho, new byte[] { 42 }, Cap);
        Assert.Equal(new byte[] { 42 }, reply.Payload.ToArray());
    }

    [Fact]
    public async Task Either_end_may_send_requests_on_the_same_connection()
    {
        await using var client = await ConnectAsync(EchoAsync);
        var server = await _accepted.Reader.ReadAsync().AsTask().WaitAsync(Cap);

        var fromClient = Enumerable.Range(0, 100).Select(i => client.RequestAsync(TypeEcho, BitConverter.GetBytes(i), Cap));
        var fromServer = Enumerable.Range(0, 100).Select(i => server.RequestAsync(TypeEcho, BitConverter.GetBytes(-i), Cap));
        var replies = await Task.WhenAll(fromClient.Concat(fromServer)).WaitAsync(Cap);

        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(i, BitConverter.ToInt32(replies[i].Payload.Span));
            Assert.Equal(-i, BitConverter.ToInt32(replies[100 + i].Payload.Span));
        }
    }

    [Fact]
    public async Task Peer_connections_share_one_connection_per_address_and_reconnect_after_close()
    {
        await using var peers = new PeerConnections(onFrame: null);
        var address = Listener.Address;

        var concurrent = Enumerable.Range(0, 16).Select(_ => peers.GetAsync(address, CancellationToken.None).AsTask());
        var connections = await Task.WhenAll(concurrent).WaitAsync(Cap);
        Assert.All(connections, c => Assert.Same(connections[0], c));
        Assert.Same(connections[0], await peers.GetAsync(address, CancellationToken.None));

        await peers.SendAsync(address, TypeOneWay, new byte[] { 5 }, CancellationToken.None);
        var oneWay = await _oneWay.Reader.ReadAsync().AsTask().WaitAsync(Cap);
        Assert.Equal(new byte[] { 5 }, oneWay.Payload.ToArray());
        var reply = await peers.RequestAsync(address, TypeEcho, new byte[] { 6 }, Cap, CancellationToken.None);
        Assert.Equal(new byte[] { 6 }, reply.Payload.ToArray());
        Assert.Equal(1, Volatile.Read(ref _acceptedCount));

        connections[0].Abort();
        var fresh = await peers.GetAsync(address, CancellationToken.None).AsTask().WaitAsync(Cap);
        Assert.NotSame(connections[0], fresh);
        Assert.False(fresh.IsClosed);
        Assert.Equal(new byte[] { 8 }, (await fresh.RequestAsync(TypeEcho, new byte[] { 8 }, Cap)).Payload.ToArray());
    }

    [Fact]
    public async Task Peer_connections_report_an_unreachable_address_as_ConnectionClosedException()
    {
        var address = Listener.Address;
        await Listener.DisposeAsync();
        await using var peers = new PeerConnections(onFrame: null);
        await Assert.ThrowsAsync<ConnectionClosedException>(
            () => peers.SendAsync(address, TypeOneWay, new byte[] { 1 }, CancellationToken.None).WaitAsync(Cap));
    }

    [Fact]
    public async Task Oversize_payload_is_refused_before_sending_and_the_connection_stays_open()
    {
        await using var client = await ConnectAsync();
        var oversize = new byte[FrameCodec.PayloadBytesMax + 1];
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.SendAsync(TypeEcho, 0, oversize).AsTask());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.RequestAsync(TypeEcho, oversize, Cap));
        Assert.Equal(new byte[] { 3 }, (await client.RequestAsync(TypeEcho, new byte[] { 3 }, Cap)).Payload.ToArray());
    }

    [Fact]
    public async Task Dispose_and_abort_are_idempotent()
    {
        var client = await ConnectAsync();
        await client.DisposeAsync();
        await client.DisposeAsync();
        client.Abort();
        Assert.True(client.IsClosed);
        Assert.True(client.Completion.IsCompletedSuccessfully);
        await Listener.DisposeAsync();
        await Listener.DisposeAsync();
    }

    private static byte[] RandomPayload(Random random, int index)
    {
        var payload = new byte[sizeof(int) + random.Next(0, 64)];
        random.NextBytes(payload);
        BinaryPrimitives.WriteInt32LittleEndian(payload, index);
        return payload;
    }

    /// <summary>
    /// Random bytes, a plausible length prefix with a random body, or a valid frame followed by
    /// random bytes: each shape reaches a different part of the reader.
    /// </summary>
    private static byte[] Garbage(Random random)
    {
        var tail = new byte[random.Next(0, 64)];
        random.NextBytes(tail);
        switch (random.Next(3))
        {
            case 0:
                return tail;
            case 1:
                var prefix = new byte[FrameCodec.LengthPrefixBytes];
                BinaryPrimitives.WriteUInt32LittleEndian(prefix, (uint)random.Next(0, 80));
                return [.. prefix, .. tail];
            default:
                var frame = new ArrayBufferWriter<byte>();
                var payload = new byte[random.Next(0, 32)];
                random.NextBytes(payload);
                ushort type = GarbageTypes[random.Next(GarbageTypes.Length)];
                ulong requestId = (ulong)random.Next(0, 4);
                FrameCodec.Write(frame, type, requestId, payload);
                return [.. frame.WrittenSpan, .. tail];
        }
    }

    private static async Task<byte[]> ReadToEndAsync(Socket socket)
    {
        using var deadline = new CancellationTokenSource(Cap);
        using var received = new MemoryStream();
        var buffer = new byte[4096];
        while (true)
        {
            int count = await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
            if (count == 0)
            {
                return received.ToArray();
            }

            received.Write(buffer, 0, count);
        }
    }

    private static ValueTask EchoAsync(FrameConnection connection, Frame frame) =>
        connection.SendAsync(frame.Type, frame.RequestId, frame.Payload);

    private Task<FrameConnection> ConnectAsync(FrameHandler? onFrame = null)
    {
        ChooseEngine();
        return FrameConnection.ConnectAsync(Listener.Address, onFrame, CancellationToken.None).WaitAsync(Cap);
    }

    private void ChooseEngine()
    {
        if (Reactor)
        {
            SocketStreams.UseReactorInThisFlow();
        }
    }

    private async Task<Socket> ConnectRawAsync()
    {
        var endpoint = Endpoints.Parse(Listener.Address);
        var socket = endpoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint).WaitAsync(Cap);
        return socket;
    }

    private void OnConnected(FrameConnection connection)
    {
        Interlocked.Increment(ref _acceptedCount);
        _accepted.Writer.TryWrite(connection);
    }

    private async ValueTask ServeAsync(FrameConnection connection, Frame frame)
    {
        switch (frame.Type)
        {
            case TypeEcho:
                await EchoAsync(connection, frame);
                break;
            case TypeOneWay:
                _oneWay.Writer.TryWrite(frame);
                break;
            case TypeHold:
                _held.Writer.TryWrite((connection, frame));
                break;
            case TypeUnreadable:
                throw new ProtocolException("the test message is unreadable");
            case TypeStall:
                _stallStarted.TrySetResult();
                await _stallReleased.Task;
                break;
            case TypeAnswerInReverse:
                _reverseBatch.Add(frame);
                if (_reverseBatch.Count == ReverseBatch)
                {
                    for (int i = _reverseBatch.Count - 1; i >= 0; i--)
                    {
                        await EchoAsync(connection, _reverseBatch[i]);
                    }

                    _reverseBatch.Clear();
                }

                break;
        }
    }
}

/// <summary>The contract over Unix domain sockets, the default transport (DESIGN.md "Processes").</summary>
public sealed class UnixSocketTransportTests : TransportContractTests
{
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("gts-");

    protected override string BindAddress => Path.Combine(_directory.FullName, "node.sock");

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Delete(recursive: true);
    }

    [Fact]
    public async Task Listener_removes_its_socket_file_on_dispose()
    {
        Assert.True(File.Exists(BindAddress));
        await Listener.DisposeAsync();
        Assert.False(File.Exists(BindAddress));
    }

    [Fact]
    public async Task A_stale_socket_file_is_replaced_but_a_live_listener_is_not()
    {
        var live = Assert.Throws<IOException>(() => FrameListener.Start(BindAddress, (_, _) => ValueTask.CompletedTask));
        Assert.Contains("another process is listening", live.Message);

        // A crashed process leaves its socket file behind. .NET unlinks the file of a socket it
        // disposes, so bind elsewhere and move the file out of its reach first.
        var stalePath = Path.Combine(_directory.FullName, "stale.sock");
        var bindPath = Path.Combine(_directory.FullName, "crashed.sock");
        using (var crashed = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            crashed.Bind(new UnixDomainSocketEndPoint(bindPath));
            File.Move(bindPath, stalePath);
        }

        Assert.True(File.Exists(stalePath));
        await using var listener = FrameListener.Start(stalePath, (c, f) => c.SendAsync(f.Type, f.RequestId, f.Payload));
        await using var client = await FrameConnection.ConnectAsync(stalePath, null, CancellationToken.None).WaitAsync(Cap);
        var reply = await client.RequestAsync(1, new byte[] { 1 }, Cap);
        Assert.Equal(new byte[] { 1 }, reply.Payload.ToArray());
    }
}

/// <summary>The contract over TCP on loopback with an OS-assigned port (DESIGN.md "Processes").</summary>
public sealed class TcpTransportTests : TransportContractTests
{
    protected override string BindAddress => "127.0.0.1:0";

    [Fact]
    public void Listener_reports_the_port_the_OS_assigned()
    {
        var (host, port) = (Listener.Address[..Listener.Address.LastIndexOf(':')], int.Parse(Listener.Address[(Listener.Address.LastIndexOf(':') + 1)..]));
        Assert.Equal("127.0.0.1", host);
        Assert.InRange(port, 1, 65535);
    }
}

/// <summary>The contract over TCP with the connections served by GTStore's epoll reactor, as a daemon serves them.</summary>
public sealed class ReactorTcpTransportTests : TransportContractTests
{
    protected override string BindAddress => "127.0.0.1:0";

    protected override bool Reactor => true;
}

/// <summary>The contract over Unix domain sockets with the connections served by GTStore's epoll reactor.</summary>
public sealed class ReactorUnixSocketTransportTests : TransportContractTests
{
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("gts-");

    protected override string BindAddress => Path.Combine(_directory.FullName, "node.sock");

    protected override bool Reactor => true;

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Delete(recursive: true);
    }
}
