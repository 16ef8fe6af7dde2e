using System.Threading.Channels;
using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Hosting;
using GTStore.Protocol;
using GTStore.Storage;
using GTStore.Transport;
using Microsoft.Extensions.Logging;

namespace GTStore.Node;

/// <summary>Settings of one node process (<c>gtstore node</c>).</summary>
public sealed record NodeOptions(string ManagerAddress, string ListenAddress, string DataDirectory)
{
    /// <summary>"memory" or "rocksdb".</summary>
    public string Engine { get; init; } = "memory";

    /// <summary>Where to serve the Redis protocol ("127.0.0.1:PORT", port 0 for any), or null for nowhere.</summary>
    public string? RespAddress { get; init; }

    /// <summary>For the RocksDB engine: when writes are synced to disk.</summary>
    public FsyncMode Fsync { get; init; } = FsyncMode.Always;

    /// <summary>For the RocksDB engine: the value cache's budget in bytes (0: no cache).</summary>
    public long ValueCacheBytes { get; init; } = RocksDbEngine.ValueCacheBytes;

    /// <summary>How long a starting node keeps trying to reach the manager.</summary>
    public TimeSpan JoinTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// A storage node process: listens for clients and peers, joins through the manager, and runs the
/// <see cref="NodeMachine"/> on one loop, carrying out its sends and replies. Thin by design: every
/// decision is the machine's.
/// </summary>
public sealed partial class NodeHost : IAsyncDisposable
{
    private readonly NodeOptions _options;
    private readonly ILogger _logger;
    private readonly Outbox _outbox = new();
    private readonly NodeMachine _machine;
    private readonly RequestReplies _replies = new();
    private readonly TaskCompletionSource _left = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly PeerConnections _connections;
    private readonly PeerSender _sender;
    private MachineLoop? _loop;
    private FrameListener? _listener;
    private Resp.RespServer? _resp;
    private long _loggedEpoch = -1;

    // The inputs posted per request or message, made once: (now, message, reply handle).
    private readonly Action<long, object?, long> _onClientRequest;
    private readonly Action<long, object?, long> _onMessage;

    private NodeHost(NodeOptions options, IStorageEngine engine, ILogger logger)
    {
        _options = options;
        _logger = logger;
        _machine = new NodeMachine(engine, _outbox, Environment.ProcessId);
        _onClientRequest = (now, request, handle) => _machine.OnClientRequest(now, handle, (ClientRequest)request!);
        _onMessage = (now, message, _) => _machine.OnMessage(now, (Message)message!);
        _connections = new PeerConnections(OnFrameAsync, logger: logger);
        _sender = new PeerSender(_connections, (peer, message) => Post((now, m) => m.OnUnreachable(now, peer, message)), logger);
    }

    public NodeId Id => _machine.Self;

    public string Address => _listener?.Address ?? _options.ListenAddress;

    /// <summary>Completes when the node has handed off its data and left the cluster.</summary>
    public Task Left => _left.Task;

    /// <summary>Faults if the node's loop failed.</summary>
    public Task Faulted => _loop?.Completion ?? Task.CompletedTask;

    /// <summary>
    /// After leaving, waits (bounded) until the requests in flight are answered, so clients see
    /// answers rather than closed connections (new ones are answered "moved"), and until the
    /// hints it held as a stand-in are handed back.
    /// </summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var idle = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            await _loop!.PostAsync(_ => idle.TrySetResult(_machine.IsDrained && _replies.Pending == 0)).ConfigureAwait(false);
            if (await idle.Task.ConfigureAwait(false))
                return;
            await Task.Delay(20).ConfigureAwait(false); // Poll the loop: in-flight requests finish on their own timers.
        }
    }

    public static async Task<NodeHost> StartAsync(NodeOptions options, ILoggerFactory logs, CancellationToken ct)
    {
        Directory.CreateDirectory(options.DataDirectory);
        DataFormat.CheckOrStamp(options.DataDirectory);
        IStorageEngine engine = options.Engine switch
        {
            "memory" => new MemoryEngine(),
            "rocksdb" => new RocksDbEngine(DatabasePath(options.DataDirectory), options.Fsync, options.ValueCacheBytes),
            var other => throw new ArgumentException($"engine must be memory or rocksdb, got '{other}'", nameof(options)),
        };
        var host = new NodeHost(options, engine, logs.CreateLogger("node"));
        await host.StartAsync(ct).ConfigureAwait(false);
        return host;
    }

    /// <summary>The RocksDB directory inside a node's data directory.</summary>
    public static string DatabasePath(string dataDirectory) => Path.Combine(dataDirectory, "db");

    /// <summary>The identity file in the data directory: the node's id and the address it served on.</summary>
    public static string IdentityPath(string dataDirectory) => Path.Combine(dataDirectory, "node.id");

    /// <summary>The id and address this data directory last served as, if any.</summary>
    public static (NodeId Id, string Address)? ReadIdentity(string dataDirectory)
    {
        var path = IdentityPath(dataDirectory);
        if (!File.Exists(path))
            return null;
        var lines = File.ReadAllLines(path);
        return lines.Length >= 2 && NodeId.TryParse(lines[0], out var id) ? (id, lines[1]) : null;
    }

    private async Task StartAsync(CancellationToken ct)
    {
        _loop = new MachineLoop(now =>
        {
            _machine.Tick(now);
            if (_machine.Store is RocksDbEngine { Fsync: FsyncMode.Batch } batched)
            {
                try
                {
                    batched.SyncPending();
                }
                catch (StorageException e)
                {
                    HostLog.SyncFailed(_logger, e.Message); // Retried on the next tick.
                }
            }
        }, AfterStep, prefetch: _machine.Prefetch);
        _listener = FrameListener.Start(_options.ListenAddress, OnFrameAsync, logger: _logger);
        HostLog.Listening(_logger, "node", _listener.Address);
        var previous = ReadIdentity(_options.DataDirectory);
        var reply = await JoinAsync(previous?.Id ?? default, ct).ConfigureAwait(false);
        if (reply.DiscardData)
        {
            // Our old identity was removed while we were away; this data is stale.
            _machine.Store.DropRange(new HashRange(0, 0));
        }
        DurableFile.WriteAtomically(IdentityPath(_options.DataDirectory),
            System.Text.Encoding.UTF8.GetBytes($"{reply.Node}\n{_listener.Address}\n"));
        await _loop.PostAsync(_ => _machine.OnJoined(reply.Node, reply.Config)).ConfigureAwait(false);
        HostLog.Joined(_logger, reply.Node.ToString());
        if (_options.RespAddress is { } resp)
        {
            _resp = Resp.RespServer.Start(resp, new Resp.RespBackend
            {
                Execute = ExecuteAsync,
                Stats = StatsAsync,
                KeyBytesMax = reply.Config.KeyBytesMax,
                ValueBytesMax = reply.Config.ValueBytesMax,
                NodeId = reply.Node.ToString(),
                Cluster = ClusterViewAsync,
            }, _logger);
            HostLog.Listening(_logger, "resp", _resp.Address);
        }
    }

    private async Task<JoinReply> JoinAsync(NodeId previousId, CancellationToken ct)
    {
        var request = MessageCodec.Encode(new JoinRequest(_listener!.Address, Environment.ProcessId, previousId));
        var deadline = DateTime.UtcNow + _options.JoinTimeout;
        while (true)
        {
            try
            {
                var frame = await _connections.RequestAsync(_options.ManagerAddress, MessageCodec.TypeOf(new JoinRequest("", 0)), request,
                    TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
                return MessageCodec.Decode(frame.Type, frame.Payload.Span) switch
                {
                    JoinReply ok => ok,
                    ErrorReply e => throw new InvalidOperationException("the manager refused the join: " + e.Message),
                    var other => throw new InvalidOperationException($"unexpected answer to join: {other.GetType().Name}"),
                };
            }
            catch (Exception e) when (e is IOException or TimeoutException && DateTime.UtcNow < deadline)
            {
                HostLog.ManagerNotReachable(_logger, _options.ManagerAddress, e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(200), ct).ConfigureAwait(false); // Retry pacing, not synchronisation.
            }
        }
    }

    /// <summary>
    /// Runs a client request through this node as forwarder, exactly as one arriving on a client
    /// connection: used by in-process front ends such as the RESP server. The reply always comes,
    /// since the machine answers every request by its deadline, so the task is not tied to
    /// <paramref name="ct"/>: a caller that stops waiting (a closing RESP connection) drops it.
    /// </summary>
    public Task<ClientReply> ExecuteAsync(ClientRequest request, CancellationToken ct = default)
    {
        if (ct.IsCancellationRequested)
            return Task.FromCanceled<ClientReply>(ct);
        var reply = new LocalReply<ClientReply>();
        var handle = _replies.RegisterLocal(reply);
        var posted = _loop!.PostAsync(_onClientRequest, request, handle);
        return posted.IsCompletedSuccessfully ? reply.Task : AfterPostAsync(posted, reply.Task);
    }

    private static async Task<T> AfterPostAsync<T>(ValueTask posted, Task<T> reply)
    {
        await posted.ConfigureAwait(false);
        return await reply.ConfigureAwait(false);
    }

    /// <summary>This node's counts (RESP INFO and DBSIZE).</summary>
    public async Task<NodeStatsReply> StatsAsync(CancellationToken ct = default)
    {
        var completion = new LocalReply<NodeStatsReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        var handle = _replies.RegisterLocal(completion);
        await _loop!.PostAsync(_ => _outbox.Reply(handle, Stats())).ConfigureAwait(false);
        return await completion.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    private NodeStatsReply Stats() => _machine.Stats() with { Resp = _resp?.Address ?? "" };

    private void Post(Action<long, NodeMachine> input)
    {
        if (_loop is { } loop)
            _ = loop.PostAsync(now => input(now, _machine)).AsTask();
    }

    private ValueTask OnFrameAsync(FrameConnection connection, Frame frame)
    {
        var message = RequestReplies.Decode(connection, frame, _logger);
        return message switch
        {
            ClientRequest request when frame.RequestId != 0 => _loop!.PostAsync(_onClientRequest, request, _replies.Register(connection, frame.RequestId)),
            NodeStatsRequest when frame.RequestId != 0 => PostStatsReply(_replies.Register(connection, frame.RequestId)),
            _ => _loop!.PostAsync(_onMessage, message),
        };
    }

    private ValueTask PostStatsReply(long handle) => _loop!.PostAsync(_ => _outbox.Reply(handle, Stats()));

    /// <summary>The effects of one loop batch, waiting for the fsync that covers its writes.</summary>
    private sealed record EffectBatch(List<(NodeId To, string? Address, Message Message)> Sends, List<(long Handle, Message Reply)> Replies);

    private readonly Channel<EffectBatch> _commits = Channel.CreateUnbounded<EffectBatch>(new UnboundedChannelOptions { SingleReader = true });
    private Task? _committer;

    /// <summary>
    /// Group commit off the loop: while one fsync runs, the loop goes on applying inputs. Each
    /// sync covers every write appended before it, and only then are the effects of the batches
    /// queued before it sent, in order. A failed sync withholds those effects: nothing unsynced is
    /// acknowledged (see <see cref="Withhold"/>).
    /// </summary>
    private async Task CommitLoopAsync(RocksDbEngine engine)
    {
        var reader = _commits.Reader;
        var ready = new List<EffectBatch>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            ready.Clear();
            while (reader.TryRead(out var batch))
                ready.Add(batch);
            try
            {
                engine.SyncPending();
            }
            catch (StorageException e)
            {
                Withhold(ready.SelectMany(b => b.Replies), e.Message);
                continue;
            }
            foreach (var batch in ready)
                Carry(batch);
        }
    }

    private void Carry(EffectBatch batch)
    {
        foreach (var (to, address, message) in batch.Sends)
            _sender.Send(to, address, message);
        foreach (var (handle, reply) in batch.Replies)
            _replies.Reply(handle, reply);
    }

    /// <summary>
    /// The effects of a batch whose writes did not reach the log: no message leaves (peers and
    /// forwarders time out and report the outcome unknown), and a write this node acknowledged to
    /// its own client is answered Unknown, naming the cause. Other replies (reads, refusals) go out.
    /// </summary>
    private void Withhold(IEnumerable<(long Handle, Message Reply)> replies, string reason)
    {
        HostLog.SyncFailed(_logger, reason);
        foreach (var (handle, reply) in replies)
            _replies.Reply(handle, WithheldReply(reply, _machine.Self, reason));
    }

    /// <summary>
    /// What a client is told instead of <paramref name="reply"/> when its batch's writes could not
    /// be logged: a write acknowledgement (Ok without value bytes) becomes Unknown naming the
    /// cause; anything else (a read's value, a refusal) is unchanged.
    /// </summary>
    public static Message WithheldReply(Message reply, NodeId self, string reason) =>
        reply is ClientReply { Status: ReplyStatus.Ok, Value: null or { Value: null } } acknowledged
            ? acknowledged with { Status = ReplyStatus.Unknown, Value = null, Error = $"{self} applied the write but could not log it ({reason}); whether it survives is unknown" }
            : reply;

    /// <summary>Hands RocksDB's buffered log to the OS; the reason it failed, or null.</summary>
    private string? FlushWal()
    {
        if (_machine.Store is not RocksDbEngine engine)
            return null;
        try
        {
            engine.FlushWal();
            return null;
        }
        catch (StorageException e)
        {
            return e.Message;
        }
    }

    private void AfterStep()
    {
        if (_machine.Store is RocksDbEngine { Fsync: FsyncMode.Always } synced)
        {
            _committer ??= Task.Run(() => CommitLoopAsync(synced));
            _commits.Writer.TryWrite(new EffectBatch([.. _outbox.Sends.Select(s => (s.To, AddressOf(s.To), s.Message))], [.. _outbox.Replies]));
        }
        else if (FlushWal() is { } failed)
        {
            // The batch's writes reach the OS before its acknowledgements leave: a crash of this
            // process cannot lose an acknowledged write (RocksDB buffers its log until now). A
            // failed write withholds the acknowledgements, as a failed sync does.
            Withhold(_outbox.Replies, failed);
        }
        else
        {
            // Carried straight from the outbox, without the copy a batch waiting for its fsync
            // needs (and makes on the loop, where the addresses may be read). Carrying only posts
            // to the loop, so the outbox does not change under these loops.
            for (var i = 0; i < _outbox.Sends.Count; i++)
            {
                var (to, message) = _outbox.Sends[i];
                _sender.Send(to, AddressOf(to), message);
            }
            for (var i = 0; i < _outbox.Replies.Count; i++)
            {
                var (handle, reply) = _outbox.Replies[i];
                _replies.Reply(handle, reply);
            }
        }
        _outbox.Clear();
        if (_machine.Current.Epoch != _loggedEpoch)
        {
            _loggedEpoch = _machine.Current.Epoch;
            HostLog.RingChanged(_logger, _loggedEpoch, _machine.Pending is null ? "" : " (transfer pending)", _machine.Current.NodeCount);
        }
        if (_outbox.Exit && !_left.Task.IsCompleted)
        {
            _machine.Store.Flush();
            HostLog.Left(_logger, _machine.Self.ToString());
            _left.TrySetResult();
        }
    }

    private string? AddressOf(NodeId node) =>
        node == NodeId.Manager ? _options.ManagerAddress : _machine.Pending?.AddressOf(node) ?? _machine.Current.AddressOf(node);

    public async ValueTask DisposeAsync()
    {
        _commits.Writer.TryComplete();
        if (_committer is not null)
            await _committer.ConfigureAwait(false);
        if (_resp is not null)
            await _resp.DisposeAsync().ConfigureAwait(false);
        if (_listener is not null)
            await _listener.DisposeAsync().ConfigureAwait(false);
        if (_loop is not null)
            await _loop.DisposeAsync().ConfigureAwait(false);
        await _sender.DisposeAsync().ConfigureAwait(false);
        await _connections.DisposeAsync().ConfigureAwait(false);
        _machine.Store.Dispose();
    }
}
