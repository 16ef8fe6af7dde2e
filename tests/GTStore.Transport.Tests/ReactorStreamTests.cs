using System.Net;
using System.Net.Sockets;
using GTStore.Transport.Reactor;

namespace GTStore.Transport.Tests;

/// <summary>
/// The stream GTStore's epoll reactor serves a socket through, against a plain socket at the other
/// end of a loopback connection: the waits it parks and what ends them (data, the end of the
/// stream, a reset, cancellation, disposal), writes larger than the kernel's buffers, and connects.
/// </summary>
public sealed class ReactorStreamTests : IAsyncLifetime
{
    private static readonly TimeSpan Cap = TimeSpan.FromSeconds(10);

    private Socket? _served;
    private Socket? _peer;
    private ReactorStream? _stream;

    private ReactorStream Stream => _stream ?? throw new InvalidOperationException("not connected");

    private Socket Peer => _peer ?? throw new InvalidOperationException("not connected");

    public async Task InitializeAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        _peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accepted = listener.AcceptAsync();
        await _peer.ConnectAsync(listener.LocalEndPoint!).WaitAsync(Cap);
        _served = await accepted.WaitAsync(Cap);
        _stream = new ReactorStream(_served);
    }

    public async Task DisposeAsync()
    {
        if (_stream is not null)
            await _stream.DisposeAsync();
        _served?.Dispose();
        _peer?.Dispose();
    }

    [Fact]
    public async Task A_waiting_read_completes_when_data_arrives()
    {
        var buffer = new byte[64];
        var read = Stream.ReadAsync(buffer).AsTask();
        Assert.False(read.IsCompleted); // Nothing sent yet: the read is parked.

        await Peer.SendAsync("hello"u8.ToArray());
        var count = await read.WaitAsync(Cap);
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buffer, 0, count));

        // A second message after the socket was drained raises a new edge.
        await Peer.SendAsync("again"u8.ToArray());
        count = await Stream.ReadAsync(buffer).AsTask().WaitAsync(Cap);
        Assert.Equal("again", System.Text.Encoding.ASCII.GetString(buffer, 0, count));
    }

    [Fact]
    public async Task The_end_of_the_stream_reads_as_zero()
    {
        var read = Stream.ReadAsync(new byte[16]).AsTask();
        Peer.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await read.WaitAsync(Cap));
    }

    [Fact]
    public async Task A_reset_fails_the_read_with_an_IOException_naming_the_cause()
    {
        var read = Stream.ReadAsync(new byte[16]).AsTask();
        Peer.LingerState = new LingerOption(true, 0); // Close with RST.
        Peer.Close();
        var error = await Assert.ThrowsAsync<IOException>(() => read.WaitAsync(Cap));
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(error.InnerException).SocketErrorCode);
    }

    [Fact]
    public async Task A_cancelled_read_ends_and_the_stream_keeps_serving()
    {
        using var cancel = new CancellationTokenSource();
        var buffer = new byte[16];
        var read = Stream.ReadAsync(buffer, cancel.Token).AsTask();
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.WaitAsync(Cap));

        await Peer.SendAsync("later"u8.ToArray());
        var count = await Stream.ReadAsync(buffer).AsTask().WaitAsync(Cap);
        Assert.Equal("later", System.Text.Encoding.ASCII.GetString(buffer, 0, count));
    }

    [Fact]
    public async Task Disposing_fails_a_waiting_read_and_later_calls()
    {
        var read = Stream.ReadAsync(new byte[16]).AsTask();
        await Stream.DisposeAsync();
        await Assert.ThrowsAsync<IOException>(() => read.WaitAsync(Cap));
        await Assert.ThrowsAsync<IOException>(() => Stream.WriteAsync(new byte[1]).AsTask());
        await Assert.ThrowsAsync<IOException>(() => Stream.ReadAsync(new byte[1]).AsTask());
    }

    [Fact]
    public async Task A_write_larger_than_the_kernel_buffers_completes_once_the_peer_reads_it()
    {
        var payload = new byte[32 << 20];
        new Random(7).NextBytes(payload);
        var write = Stream.WriteAsync(payload).AsTask();
        Assert.False(write.IsCompleted); // 32 MiB do not fit in loopback's socket buffers.

        var received = new byte[payload.Length];
        var total = 0;
        using var deadline = new CancellationTokenSource(Cap);
        while (total < received.Length)
            total += await Peer.ReceiveAsync(received.AsMemory(total), SocketFlags.None, deadline.Token);
        await write.WaitAsync(Cap);
        Assert.Equal(payload, received);
    }

    [Fact]
    public async Task Bytes_cross_both_ways_in_order()
    {
        for (var round = 0; round < 200; round++)
        {
            var message = BitConverter.GetBytes(round);
            await Stream.WriteAsync(message).AsTask().WaitAsync(Cap);
            var echo = new byte[4];
            var got = 0;
            while (got < 4)
                got += await Peer.ReceiveAsync(echo.AsMemory(got), SocketFlags.None);
            await Peer.SendAsync(echo);
            var back = new byte[4];
            got = 0;
            while (got < 4)
                got += await Stream.ReadAsync(back.AsMemory(got)).AsTask().WaitAsync(Cap);
            Assert.Equal(round, BitConverter.ToInt32(back));
        }
    }

    [Fact]
    public async Task Connecting_to_a_closed_port_fails_with_connection_refused()
    {
        SocketStreams.UseReactorInThisFlow();
        int port;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)probe.LocalEndPoint!).Port; // Bound, never listening: refused.
        }
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var error = await Assert.ThrowsAsync<SocketException>(
            () => SocketStreams.ConnectAsync(socket, new IPEndPoint(IPAddress.Loopback, port), CancellationToken.None).WaitAsync(Cap));
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
    }

    [Fact]
    public async Task A_connect_through_the_reactor_carries_data()
    {
        SocketStreams.UseReactorInThisFlow();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var accepted = listener.AcceptAsync();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await using var stream = await SocketStreams.ConnectAsync(socket, listener.LocalEndPoint!, CancellationToken.None).WaitAsync(Cap);
        Assert.IsType<ReactorStream>(stream);
        using var server = await accepted.WaitAsync(Cap);

        await stream.WriteAsync("ping"u8.ToArray());
        var buffer = new byte[4];
        var got = 0;
        while (got < 4)
            got += await server.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None);
        Assert.Equal("ping"u8.ToArray(), buffer);

        // And back: the events of a socket the reactor connected reach its stream.
        await server.SendAsync("pong"u8.ToArray());
        got = 0;
        while (got < 4)
            got += await stream.ReadAsync(buffer.AsMemory(got)).AsTask().WaitAsync(Cap);
        Assert.Equal("pong"u8.ToArray(), buffer);
    }

    [Fact]
    public async Task A_unix_socket_is_not_woken_each_time_its_peer_reads()
    {
        // A Unix socket reports room to write whenever its peer takes a message; only a write
        // that found the socket full asks for that report. Nothing comes back to be read here and
        // no write finds the socket full, so the stream has no reason to be woken at all; watching
        // writes all the time gave one event per message taken.
        var (mine, peer) = UnixPair();
        using var _ = mine;
        using var __ = peer;
        await using var stream = new ReactorStream(mine);
        var buffer = new byte[8];
        const int rounds = 100;
        for (var i = 0; i < rounds; i++)
        {
            await stream.WriteAsync(BitConverter.GetBytes((long)i)).AsTask().WaitAsync(Cap);
            var got = 0;
            while (got < 8)
                got += await peer.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None);
            Assert.Equal(i, BitConverter.ToInt64(buffer));
        }
        Assert.InRange(stream.EventsReceived, 0, rounds / 10);
    }

    private static (Socket Mine, Socket Peer) UnixPair()
    {
        var path = Path.Combine(Path.GetTempPath(), $"gts-reactor-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen();
        var peer = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        peer.Connect(new UnixDomainSocketEndPoint(path));
        var mine = listener.Accept();
        File.Delete(path);
        return (mine, peer);
    }
}
