using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GTStore.Transport;

/// <summary>
/// Accepts connections on one address and runs one <see cref="FrameConnection"/> per accepted
/// socket. Disposing it stops accepting and closes every connection it accepted.
/// </summary>
public sealed class FrameListener : IAsyncDisposable
{
    /// <summary>Connections waiting to be accepted before the OS refuses more.</summary>
    private const int AcceptBacklog = 512;

    /// <summary>Most accepted connections open at once; more are closed on arrival.</summary>
    private const int ConnectionsMax = 16_384;

    /// <summary>Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.</summary>

    private readonly Socket _listenSocket;
    private readonly string? _unixPath;
    private readonly FrameHandler _onFrame;
    private readonly Action<FrameConnection>? _onConnected;
    private readonly Action<FrameConnection>? _onClosed;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<FrameConnection, byte> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _disposed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _acceptLoop = Task.CompletedTask;
    private long _acceptedCount;
    private int _disposing;

    private FrameListener(
        Socket listenSocket,
        string address,
        string? unixPath,
        FrameHandler onFrame,
        Action<FrameConnection>? onConnected,
        Action<FrameConnection>? onClosed,
        ILogger? logger)
    {
        _listenSocket = listenSocket;
        Address = address;
        _unixPath = unixPath;
        _onFrame = onFrame;
        _onConnected = onConnected;
        _onClosed = onClosed;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The bound address: with the real port when port 0 was asked for.</summary>
    public string Address { get; }

    /// <summary>Accepted connections that are open now.</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>
    /// Binds <paramref name="address"/> and starts accepting. For a Unix socket, a stale socket
    /// file left by a crashed process is removed first; a live one is an error.
    /// </summary>
    /// <param name="address">Where to listen (see <see cref="Endpoints"/>).</param>
    /// <param name="onFrame">Receives each connection's requests and one-way messages.</param>
    /// <param name="onConnected">Called for each accepted connection before it reads its first frame.</param>
    /// <param name="onClosed">Called once for each accepted connection after it closed.</param>
    /// <param name="logger">Optional logger.</param>
    /// <exception cref="IOException">The address cannot be bound; the message says why.</exception>
    public static FrameListener Start(
        string address,
        FrameHandler onFrame,
        Action<FrameConnection>? onConnected = null,
        Action<FrameConnection>? onClosed = null,
        ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(onFrame);
        var endpoint = Endpoints.Parse(address);
        string? unixPath = endpoint is UnixDomainSocketEndPoint ? endpoint.ToString() : null;
        if (unixPath is not null)
        {
            RemoveStaleSocketFile(endpoint, unixPath);
        }

        var socket = Endpoints.CreateSocket(endpoint);
        try
        {
            socket.Bind(endpoint);
            socket.Listen(AcceptBacklog);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException($"cannot listen on {address}: {e.Message} ({e.SocketErrorCode})", e);
        }

        var bound = Endpoints.Format(unixPath is null ? socket.LocalEndPoint! : endpoint);
        var listener = new FrameListener(socket, bound, unixPath, onFrame, onConnected, onClosed, logger);
        listener._acceptLoop = Task.Run(listener.AcceptLoopAsync);
        return listener;
    }

    /// <summary>Stops accepting, closes every accepted connection and removes the Unix socket file. Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposing, 1) != 0)
        {
            await _disposed.Task.ConfigureAwait(false);
            return;
        }

        try
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            _listenSocket.Dispose();
            await _acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await Task.WhenAll(_connections.Keys.Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
            if (_unixPath is not null)
            {
                TryDeleteFile(_unixPath);
            }
        }
        finally
        {
            _stopping.Dispose();
            _disposed.TrySetResult();
        }
    }

    private static void RemoveStaleSocketFile(EndPoint endpoint, string path)
    {
        if (Directory.Exists(path))
        {
            throw new IOException($"cannot listen on {path}: it is a directory");
        }

        if (!File.Exists(path))
        {
            return;
        }

        // A socket file has length 0; anything else is a real file that must not be deleted.
        if (new FileInfo(path).Length != 0)
        {
            throw new IOException($"cannot listen on {path}: a file that is not a socket is in the way");
        }

        // A live listener accepts this probe; a file left by a crashed process refuses it.
        using var probe = Endpoints.CreateSocket(endpoint);
        try
        {
            probe.Connect(endpoint);
        }
        catch (SocketException)
        {
            File.Delete(path);
            return;
        }

        throw new IOException($"cannot listen on {path}: another process is listening there");
    }

    private static void TryDeleteFile(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left behind; the next listener on this path removes it as stale.
        }
    }

    private Task AcceptLoopAsync() =>
        SocketAcceptor.RunAsync(_listenSocket, Attach, e => Log.AcceptFailed(_logger, e, Address), _stopping.Token);

    private void Attach(Socket socket)
    {
        if (_connections.Count >= ConnectionsMax)
        {
            Log.ConnectionRefused(_logger, Address, _connections.Count, ConnectionsMax);
            socket.Dispose();
            return;
        }

        if (socket.ProtocolType == ProtocolType.Tcp)
        {
            socket.NoDelay = true;
        }

        long sequence = Interlocked.Increment(ref _acceptedCount);
        var remote = socket.RemoteEndPoint is IPEndPoint ip ? Endpoints.Format(ip) : $"{Address}#{sequence}";
        var connection = new FrameConnection(socket, SocketStreams.Open(socket), remote, accepted: true, _onFrame, _logger);
        _connections.TryAdd(connection, 0);
        _ = ForgetWhenClosedAsync(connection);
        try
        {
            _onConnected?.Invoke(connection);
        }
        catch (Exception e)
        {
            Log.CallbackFailed(_logger, e, Address);
            connection.Abort("the listener's connect callback failed");
            return;
        }

        connection.Start();
        if (Volatile.Read(ref _disposing) != 0)
        {
            connection.Abort("the listener is closing");
        }
    }

    private async Task ForgetWhenClosedAsync(FrameConnection connection)
    {
        await connection.Completion.ConfigureAwait(false);
        _connections.TryRemove(connection, out _);
        try
        {
            _onClosed?.Invoke(connection);
        }
        catch (Exception e)
        {
            Log.CallbackFailed(_logger, e, Address);
        }
    }
}
