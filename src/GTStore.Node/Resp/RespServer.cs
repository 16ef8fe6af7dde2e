using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using GTStore.Protocol.Resp;
using GTStore.Transport;
using Microsoft.Extensions.Logging;

namespace GTStore.Node.Resp;

/// <summary>
/// The Redis protocol (RESP2) front end of a node, over TCP: Redis clients, <c>redis-cli</c> and
/// <c>redis-benchmark</c> talk to it, and every get, put and delete goes through the
/// <see cref="RespBackend"/> (the node's forwarder and quorum path). Each connection reads as
/// many pipelined requests as have arrived, runs them concurrently (in order for requests on the
/// same key), writes the replies in request order and flushes once per batch.
/// </summary>
public sealed class RespServer : IAsyncDisposable
{
    /// <summary>Most clients connected at once, as Redis's <c>maxclients</c> default.</summary>
    public const int ConnectionsMax = 10_000;

    /// <summary>
    /// How far past the key and value limits a bulk string may go and still be read, in bytes.
    /// A value a little over the limit is read and answered with an error naming the limit, and
    /// the connection keeps serving; a bulk length beyond this is a protocol error, answered from
    /// its header alone (nothing of it buffered), and the connection closes.
    /// </summary>
    public const int BulkBytesSlack = 1024 * 1024;

    /// <summary>Connections waiting to be accepted before the OS refuses more (Redis's <c>tcp-backlog</c>).</summary>
    private const int AcceptBacklog = 511;

    /// <summary>Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.</summary>

    private readonly Socket _listenSocket;
    private readonly ConcurrentDictionary<RespConnection, byte> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _disposed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _acceptLoop = Task.CompletedTask;
    private long _lastClientId;
    private int _disposing;

    private RespServer(Socket listenSocket, RespBackend backend, ILogger logger)
    {
        _listenSocket = listenSocket;
        Backend = backend;
        Logger = logger;
        var local = (IPEndPoint)listenSocket.LocalEndPoint!;
        Address = Endpoints.Format(local);
        Port = local.Port;
        Parser = new RespParser(Math.Max(backend.KeyBytesMax, backend.ValueBytesMax) + BulkBytesSlack);
        RunId = RandomNumberGenerator.GetHexString(40, lowercase: true);
    }

    /// <summary>The bound address, <c>host:port</c>, with the real port when port 0 was asked for.</summary>
    public string Address { get; }

    /// <summary>Clients connected now.</summary>
    public int ConnectionCount => _connections.Count;

    internal int Port { get; }

    internal RespBackend Backend { get; }

    internal RespParser Parser { get; }

    internal ILogger Logger { get; }

    /// <summary>40 hex digits naming this server's run, as Redis's <c>run_id</c>.</summary>
    internal string RunId { get; }

    internal long StartedMs { get; } = Environment.TickCount64;

    internal IEnumerable<RespConnection> Connections => _connections.Keys;

    /// <summary>Binds <paramref name="address"/> (<c>host:port</c>; port 0 picks a free one) and starts accepting.</summary>
    /// <exception cref="ArgumentException">The address or the backend is not usable; the message says why.</exception>
    /// <exception cref="IOException">The address cannot be bound.</exception>
    public static RespServer Start(string address, RespBackend backend, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(logger);
        Validate(backend);
        var endpoint = Endpoints.Parse(address);
        if (endpoint is not IPEndPoint ip)
        {
            throw new ArgumentException($"the RESP server listens on TCP host:port, got '{address}'", nameof(address));
        }

        var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(ip);
            socket.Listen(AcceptBacklog);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException($"cannot listen for RESP on {address}: {e.Message} ({e.SocketErrorCode})", e);
        }

        var server = new RespServer(socket, backend, logger);
        server._acceptLoop = Task.Run(server.AcceptLoopAsync);
        RespLog.Listening(logger, server.Address);
        return server;
    }

    /// <summary>Stops accepting and closes every client connection. Idempotent.</summary>
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
            var connections = _connections.Keys.ToArray();
            foreach (var connection in connections)
            {
                connection.Abort();
            }

            await Task.WhenAll(connections.Select(c => c.Completion)).ConfigureAwait(false);
            // A closed connection leaves the set in its runner's finally, which may still be
            // running now: once closed, none counts.
            foreach (var connection in connections)
            {
                _connections.TryRemove(connection, out _);
            }
        }
        finally
        {
            _stopping.Dispose();
            _disposed.TrySetResult();
        }
    }

    private static void Validate(RespBackend backend)
    {
        var problems = new List<string>();
        if (backend.Execute is null)
        {
            problems.Add("Execute is null");
        }

        if (backend.Stats is null)
        {
            problems.Add("Stats is null");
        }

        if (backend.KeyBytesMax < 1)
        {
            problems.Add($"KeyBytesMax must be at least 1, got {backend.KeyBytesMax}");
        }

        if (backend.ValueBytesMax < 0)
        {
            problems.Add($"ValueBytesMax must be at least 0, got {backend.ValueBytesMax}");
        }

        if ((long)Math.Max(backend.KeyBytesMax, backend.ValueBytesMax) + BulkBytesSlack > RespParser.RequestBytesMaxDefault)
        {
            problems.Add($"KeyBytesMax and ValueBytesMax must be below {RespParser.RequestBytesMaxDefault - BulkBytesSlack}");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException("RESP backend: " + string.Join("; ", problems), nameof(backend));
        }
    }

    private Task AcceptLoopAsync() =>
        SocketAcceptor.RunAsync(_listenSocket, Attach, e => RespLog.AcceptFailed(Logger, e, Address), _stopping.Token);

    private void Attach(Socket socket)
    {
        if (_connections.Count >= ConnectionsMax)
        {
            RespLog.ConnectionRefused(Logger, Address, _connections.Count, ConnectionsMax);
            RefuseQuietly(socket);
            return;
        }

        RespConnection connection;
        try
        {
            socket.NoDelay = true;
            connection = new RespConnection(this, socket, Interlocked.Increment(ref _lastClientId));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The client left between accept and setup.
            socket.Dispose();
            return;
        }

        _connections.TryAdd(connection, 0);
        _ = RunAsync(connection);
        if (Volatile.Read(ref _disposing) != 0)
        {
            connection.Abort();
        }
    }

    private async Task RunAsync(RespConnection connection)
    {
        await Task.Yield(); // Off the accept loop: a connection may serve a whole batch before its first await.
        try
        {
            await connection.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            _connections.TryRemove(connection, out _);
        }
    }

    /// <summary>Tells a client over the limit why, as Redis does, and closes. The line fits the empty send buffer of a new socket, so the send does not block.</summary>
    private static void RefuseQuietly(Socket socket)
    {
        try
        {
            socket.Send(Encoding.ASCII.GetBytes("-ERR max number of clients reached\r\n"), SocketFlags.None);
        }
        catch (SocketException)
        {
            // The client is gone already; nothing to tell.
        }
        finally
        {
            socket.Dispose();
        }
    }
}
