using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using GTStore.Core.Messages;
using GTStore.Protocol;
using Microsoft.Extensions.Logging;

namespace GTStore.Transport;

/// <summary>
/// Outbound connections keyed by address: one persistent connection per peer, opened on first
/// use, shared by all callers, and reopened on the next use after it closed (DESIGN.md
/// "Transport": never a socket per request).
/// </summary>
public sealed class PeerConnections : IAsyncDisposable
{
    /// <summary>How long one connect attempt may take unless the constructor says otherwise.</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Lookups one <see cref="GetAsync"/> makes: each either returns, drops one closed or failed
    /// connection, or installs a connect attempt, so a few suffice unless peers flap.
    /// </summary>
    private const int LookupPassesMax = 4;

    private readonly ConcurrentDictionary<string, Task<FrameConnection>> _connections = new(StringComparer.Ordinal);
    private readonly FrameHandler? _onFrame;
    private readonly TimeSpan _connectTimeout;
    private readonly ILogger? _logger;
    private readonly CancellationTokenSource _disposing = new();
    private int _disposed;

    /// <summary>Creates an empty cache.</summary>
    /// <param name="onFrame">Receives requests and one-way messages that peers send back on these connections.</param>
    /// <param name="connectTimeout">Cap on one connect attempt; default <see cref="DefaultConnectTimeout"/>.</param>
    /// <param name="logger">Optional logger.</param>
    public PeerConnections(FrameHandler? onFrame, TimeSpan? connectTimeout = null, ILogger? logger = null)
    {
        _onFrame = onFrame;
        _connectTimeout = connectTimeout ?? DefaultConnectTimeout;
        _logger = logger;
        if (_connectTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(connectTimeout), _connectTimeout, "a connect timeout must be positive");
        }
    }

    /// <summary>
    /// The open connection to <paramref name="address"/>, connecting if there is none. Concurrent
    /// callers share one connect attempt, and its failure.
    /// </summary>
    /// <exception cref="ConnectionClosedException">The peer could not be reached; the message says why.</exception>
    public async ValueTask<FrameConnection> GetAsync(string address, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(address);
        for (int pass = 0; pass < LookupPassesMax; pass++)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            if (!_connections.TryGetValue(address, out var attempt))
            {
                var connect = new TaskCompletionSource<FrameConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
                if (!_connections.TryAdd(address, connect.Task))
                {
                    continue;
                }

                _ = ConnectSharedAsync(address, connect);
                attempt = connect.Task;
            }

            if (attempt.IsCompleted && !attempt.IsCompletedSuccessfully)
            {
                // An earlier attempt failed and its callers were told; this caller tries afresh.
                Forget(address, attempt);
                continue;
            }

            var connection = await attempt.WaitAsync(ct).ConfigureAwait(false);
            if (!connection.IsClosed)
            {
                return connection;
            }

            Forget(address, attempt);
        }

        throw new ConnectionClosedException($"connection to {address} closed each of {LookupPassesMax} times it was opened");
    }

    /// <summary>Sends a one-way message (request id 0) to <paramref name="address"/>.</summary>
    /// <exception cref="ConnectionClosedException">The peer could not be reached.</exception>
    public Task SendAsync(string address, ushort type, ReadOnlyMemory<byte> payload, CancellationToken ct) =>
        SendOnceAsync(address, connection => connection.SendAsync(type, 0, payload, ct), ct);

    /// <summary>Sends a one-way <paramref name="message"/> (request id 0) to <paramref name="address"/>, encoded as it is written.</summary>
    /// <exception cref="ConnectionClosedException">The peer could not be reached.</exception>
    public Task SendAsync(string address, Message message, CancellationToken ct) =>
        SendOnceAsync(address, connection => connection.SendAsync(0, message, ct), ct);

    private async Task SendOnceAsync(string address, Func<FrameConnection, ValueTask> send, CancellationToken ct)
    {
        var connection = await GetAsync(address, ct).ConfigureAwait(false);
        try
        {
            await send(connection).ConfigureAwait(false);
        }
        catch (ConnectionClosedException)
        {
            // The cached connection closed before the frame was queued (the peer restarted, say):
            // nothing was sent, so one retry on a fresh connection cannot duplicate the message.
            connection = await GetAsync(address, ct).ConfigureAwait(false);
            await send(connection).ConfigureAwait(false);
        }
    }

    /// <summary>The connection to <paramref name="address"/> if one is open now, without connecting or waiting.</summary>
    public bool TryGetOpen(string address, [NotNullWhen(true)] out FrameConnection? connection)
    {
        connection = _connections.TryGetValue(address, out var attempt) && attempt.IsCompletedSuccessfully && !attempt.Result.IsClosed
            ? attempt.Result
            : null;
        return connection is not null;
    }

    /// <summary>Sends a request to <paramref name="address"/> and waits for its response (see <see cref="FrameConnection.RequestAsync"/>).</summary>
    public async Task<Frame> RequestAsync(
        string address, ushort type, ReadOnlyMemory<byte> payload, TimeSpan timeout, CancellationToken ct)
    {
        var connection = await GetAsync(address, ct).ConfigureAwait(false);
        return await connection.RequestAsync(type, payload, timeout, ct).ConfigureAwait(false);
    }

    /// <summary>Closes every connection. Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _disposing.CancelAsync().ConfigureAwait(false);
        var open = _connections.Values.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result.DisposeAsync().AsTask());
        await Task.WhenAll(open).ConfigureAwait(false);
        _connections.Clear();
    }

    private async Task ConnectSharedAsync(string address, TaskCompletionSource<FrameConnection> connect)
    {
        // The attempt is shared, so no single caller's token may cancel it: it has its own cap.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_disposing.Token);
        deadline.CancelAfter(_connectTimeout);
        try
        {
            var connection = await FrameConnection.ConnectAsync(address, _onFrame, deadline.Token, _logger).ConfigureAwait(false);
            connect.SetResult(connection);
            _ = ForgetWhenClosedAsync(address, connect.Task, connection);
            if (Volatile.Read(ref _disposed) != 0)
            {
                connection.Abort("the peer connection cache is closing");
            }
        }
        catch (OperationCanceledException) when (!_disposing.IsCancellationRequested)
        {
            Fail(connect, new ConnectionClosedException(
                $"cannot connect to {address}: no answer within {_connectTimeout.TotalMilliseconds:0} ms"));
        }
        catch (Exception e) when (e is ConnectionClosedException or ArgumentException or OperationCanceledException)
        {
            Fail(connect, e);
        }
        catch (Exception e)
        {
            Fail(connect, new ConnectionClosedException($"cannot connect to {address}: {e.Message}", e));
        }
    }

    private static void Fail(TaskCompletionSource<FrameConnection> connect, Exception e)
    {
        connect.SetException(e);

        // Mark the failure observed: callers that gave up waiting must not leave it unobserved.
        _ = connect.Task.Exception;
    }

    private async Task ForgetWhenClosedAsync(string address, Task<FrameConnection> attempt, FrameConnection connection)
    {
        await connection.Completion.ConfigureAwait(false);
        Forget(address, attempt);
    }

    private void Forget(string address, Task<FrameConnection> attempt) =>
        _connections.TryRemove(KeyValuePair.Create(address, attempt));
}
