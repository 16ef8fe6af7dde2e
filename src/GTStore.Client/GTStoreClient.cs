using System.Text;
using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Protocol;
using GTStore.Transport;

namespace GTStore.Client;

/// <summary>Where the client finds the cluster and how long it waits.</summary>
public sealed record ClientOptions(string ManagerAddress)
{
    /// <summary>How long one request may take before its outcome is reported unknown (writes) or retried (reads).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How many forwarders a request tries when the forwarder cannot be reached.</summary>
    public int Attempts { get; init; } = 3;

    /// <summary>
    /// Node addresses to use as forwarder when the manager cannot be reached (nodes keep serving
    /// while the manager is down). Tried in order.
    /// </summary>
    public IReadOnlyList<string> FallbackNodes { get; init; } = [];
}

/// <summary>The answer to a read: <see cref="Found"/> with its value and version, and the coordinator that served it.</summary>
public sealed record GetResult(bool Found, byte[]? Value, Core.Version Version, NodeId Coordinator)
{
    public string? ValueString => Value is null ? null : Encoding.UTF8.GetString(Value);
}

/// <summary>The answer to a write or delete: the version stored and the coordinator that ran the quorum.</summary>
public sealed record WriteResult(Core.Version Version, NodeId Coordinator);

/// <summary>The cluster answered that the request failed; nothing was written.</summary>
public class GTStoreException(string message) : Exception(message);

/// <summary>The request was refused as invalid (e.g. a key over the size limit).</summary>
public sealed class InvalidRequestException(string message) : GTStoreException(message);

/// <summary>
/// The outcome of a write is not known: it timed out or lost its connection while in flight, so
/// it may or may not have been applied. Never reported as a failure.
/// </summary>
public sealed class UnknownOutcomeException(string message) : GTStoreException(message);

/// <summary>
/// The seed's client API in C# idiom: <see cref="InitAsync"/> (init: asks the manager for an id
/// and a forwarder), <see cref="PutAsync(byte[], byte[], CancellationToken)"/>, <see cref="GetAsync(byte[], CancellationToken)"/>,
/// <see cref="DeleteAsync(byte[], CancellationToken)"/> and <see cref="DisposeAsync"/> (finalize). Keys and values are
/// binary-safe. Unlike the seed, many requests may be in flight at once on the one persistent
/// connection to the forwarder. Thread-safe.
/// </summary>
public sealed class GTStoreClient : IAsyncDisposable, IDisposable
{
    private readonly ClientOptions _options;
    private readonly SemaphoreSlim _reconnect = new(1, 1);
    private FrameConnection? _forwarder;
    private ClusterConfig _config = new();

    private GTStoreClient(ClientOptions options) => _options = options;

    public long ClientId { get; private set; }

    public NodeId Forwarder { get; private set; } = NodeId.None;

    public string ForwarderAddress { get; private set; } = "";

    /// <summary>The cluster's limits and quorum settings, as the manager gave them.</summary>
    public ClusterConfig Config => _config;

    /// <summary>init(): contacts the manager, gets a client id and a forwarder, connects to it.</summary>
    public static async Task<GTStoreClient> InitAsync(ClientOptions options, CancellationToken ct = default)
    {
        var client = new GTStoreClient(options);
        await client.ReinitAsync(null, ct).ConfigureAwait(false);
        return client;
    }

    public static GTStoreClient Init(ClientOptions options) => InitAsync(options).GetAwaiter().GetResult();

    private async Task ReinitAsync(FrameConnection? broken, CancellationToken ct)
    {
        await _reconnect.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_forwarder is not null && _forwarder != broken && !_forwarder.IsClosed)
                return; // Another caller already moved to a working forwarder.
            FrameConnection connection;
            try
            {
                connection = await ConnectThroughManagerAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ConnectionClosedException or TimeoutException && _options.FallbackNodes.Count > 0)
            {
                connection = await ConnectToFallbackAsync(e.Message, ct).ConfigureAwait(false);
            }
            // The old forwarder failed us: drop its connection at once rather than wait to drain it.
            _forwarder?.Abort("moved to another forwarder");
            _forwarder = connection;
        }
        finally
        {
            _reconnect.Release();
        }
    }

    /// <summary>The seed's init: the manager gives a client id and a forwarder (round-robin).</summary>
    private async Task<FrameConnection> ConnectThroughManagerAsync(CancellationToken ct)
    {
        await using var manager = await FrameConnection.ConnectAsync(_options.ManagerAddress, null, ct).ConfigureAwait(false);
        // If a forwarder cannot be reached, the next ask gives another.
        for (var attempt = 1; ; attempt++)
        {
            var reply = await RequestAsync(manager, new ClientInitRequest(), ct).ConfigureAwait(false);
            if (reply is ErrorReply error)
                throw new GTStoreException(error.Message);
            var init = (ClientInitReply)reply;
            try
            {
                var connection = await FrameConnection.ConnectAsync(init.ForwarderAddress, null, ct).ConfigureAwait(false);
                (ClientId, Forwarder, ForwarderAddress, _config) = (init.ClientId, init.Forwarder, init.ForwarderAddress, init.Config);
                return connection;
            }
            catch (ConnectionClosedException) when (attempt < _options.Attempts)
            {
            }
        }
    }

    /// <summary>The manager is unreachable: any node can forward, so use the first known one that answers.</summary>
    private async Task<FrameConnection> ConnectToFallbackAsync(string managerProblem, CancellationToken ct)
    {
        var problems = new List<string> { $"manager: {managerProblem}" };
        foreach (var address in _options.FallbackNodes)
        {
            try
            {
                var connection = await FrameConnection.ConnectAsync(address, null, ct).ConfigureAwait(false);
                (Forwarder, ForwarderAddress) = (NodeId.None, address);
                return connection;
            }
            catch (ConnectionClosedException e)
            {
                problems.Add(e.Message);
            }
        }
        throw new GTStoreException("no forwarder reachable: " + string.Join("; ", problems));
    }

    /// <summary>Moves to another forwarder; if none is reachable now, the next attempt reports it.</summary>
    private async Task TryReinitAsync(FrameConnection broken, CancellationToken ct)
    {
        try
        {
            await ReinitAsync(broken, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConnectionClosedException or TimeoutException or IOException or GTStoreException)
        {
            // Keep the broken connection: the next attempt sees it closed and tries again.
        }
    }

    private async Task<Message> RequestAsync(FrameConnection connection, Message request, CancellationToken ct)
    {
        var frame = await connection.RequestAsync(MessageCodec.TypeOf(request), MessageCodec.Encode(request), _options.RequestTimeout, ct).ConfigureAwait(false);
        return MessageCodec.Decode(frame.Type, frame.Payload.Span);
    }

    public Task<WriteResult> PutAsync(string key, string value, CancellationToken ct = default) =>
        PutAsync(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value), ct);

    /// <summary>put(): stores <paramref name="value"/> under <paramref name="key"/> once W replicas acknowledge.</summary>
    public async Task<WriteResult> PutAsync(byte[] key, byte[] value, CancellationToken ct = default)
    {
        CheckSizes(key, value);
        var reply = await SendAsync(new ClientRequest(ClientOp.Put, key, value), ct).ConfigureAwait(false);
        return ToWriteResult(reply);
    }

    public Task<GetResult> GetAsync(string key, CancellationToken ct = default) => GetAsync(Encoding.UTF8.GetBytes(key), ct);

    /// <summary>get(): the latest version among R replicas; <see cref="GetResult.Found"/> false when the key does not exist.</summary>
    public async Task<GetResult> GetAsync(byte[] key, CancellationToken ct = default)
    {
        CheckSizes(key, null);
        var reply = await SendAsync(new ClientRequest(ClientOp.Get, key, null), ct).ConfigureAwait(false);
        return reply.Status switch
        {
            ReplyStatus.Ok => new GetResult(true, reply.Value!.Value.Value, reply.Value.Value.Version, reply.Coordinator),
            ReplyStatus.NotFound => new GetResult(false, null, Core.Version.Zero, reply.Coordinator),
            _ => throw ToException(reply),
        };
    }

    public Task<WriteResult> DeleteAsync(string key, CancellationToken ct = default) => DeleteAsync(Encoding.UTF8.GetBytes(key), ct);

    /// <summary>Deletes <paramref name="key"/> (writes a tombstone version).</summary>
    public async Task<WriteResult> DeleteAsync(byte[] key, CancellationToken ct = default)
    {
        CheckSizes(key, null);
        var reply = await SendAsync(new ClientRequest(ClientOp.Delete, key, null), ct).ConfigureAwait(false);
        return ToWriteResult(reply);
    }

    public WriteResult Put(string key, string value) => PutAsync(key, value).GetAwaiter().GetResult();

    public WriteResult Put(byte[] key, byte[] value) => PutAsync(key, value).GetAwaiter().GetResult();

    public GetResult Get(string key) => GetAsync(key).GetAwaiter().GetResult();

    public GetResult Get(byte[] key) => GetAsync(key).GetAwaiter().GetResult();

    public WriteResult Delete(string key) => DeleteAsync(key).GetAwaiter().GetResult();

    private void CheckSizes(byte[] key, byte[]? value)
    {
        if (_config.CheckSizes(key.Length, value?.Length) is { } problem)
            throw new InvalidRequestException(problem);
    }

    /// <summary>
    /// Sends through the forwarder. If the forwarder cannot be reached before the request leaves,
    /// the client asks the manager for another and resends; if a request was in flight when the
    /// connection broke or timed out, a read is resent, and a write is reported unknown.
    /// </summary>
    private async Task<ClientReply> SendAsync(ClientRequest request, CancellationToken ct)
    {
        var inFlightLost = false;
        for (var attempt = 1; ; attempt++)
        {
            var connection = _forwarder ?? throw new ObjectDisposedException(nameof(GTStoreClient));
            if (connection.IsClosed)
            {
                // Nothing was sent on a connection already closed: safe to move on and resend.
                if (attempt >= _options.Attempts)
                {
                    var why = $"{request.Op} failed after {attempt} attempts: the forwarder {Forwarder} is unreachable";
                    throw inFlightLost && request.Op != ClientOp.Get ? new UnknownOutcomeException(why) : new GTStoreException(why);
                }
                await TryReinitAsync(connection, ct).ConfigureAwait(false);
                continue;
            }
            try
            {
                var reply = await RequestAsync(connection, request, ct).ConfigureAwait(false);
                if (reply is ClientReply { Status: ReplyStatus.Moved } && attempt < _options.Attempts)
                {
                    // The forwarder left the cluster and did nothing: find another and resend.
                    await ReinitAsync(connection, ct).ConfigureAwait(false);
                    continue;
                }
                return reply as ClientReply ?? throw new GTStoreException(reply is ErrorReply e ? e.Message : $"unexpected reply {reply.GetType().Name}");
            }
            catch (Exception e) when (e is ConnectionClosedException or TimeoutException or IOException)
            {
                // The request may have been applied. Resending is safe: a put or delete resent gets
                // a newer version of the same effect. Only when no attempt answers is the outcome
                // unknown (writes) or a failure (reads).
                inFlightLost = true;
                if (attempt >= _options.Attempts)
                {
                    throw request.Op == ClientOp.Get
                        ? new GTStoreException($"{request.Op} failed after {attempt} attempts: {e.Message}")
                        : new UnknownOutcomeException($"{request.Op} of the key via {Forwarder}, {attempt} attempts: {e.Message}; the write may or may not have been applied");
                }
                await TryReinitAsync(connection, ct).ConfigureAwait(false);
            }
        }
    }

    private static WriteResult ToWriteResult(ClientReply reply) =>
        reply.Status == ReplyStatus.Ok ? new WriteResult(reply.Value!.Value.Version, reply.Coordinator) : throw ToException(reply);

    private static GTStoreException ToException(ClientReply reply) => reply.Status switch
    {
        ReplyStatus.Unknown => new UnknownOutcomeException(reply.Error ?? "outcome unknown"),
        ReplyStatus.Invalid => new InvalidRequestException(reply.Error ?? "invalid request"),
        _ => new GTStoreException(reply.Error ?? $"request failed ({reply.Status})"),
    };

    /// <summary>finalize(): closes the connection to the forwarder.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_forwarder is not null)
            await _forwarder.DisposeAsync().ConfigureAwait(false);
        _forwarder = null;
        _reconnect.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
