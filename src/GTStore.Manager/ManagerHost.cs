using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Hosting;
using GTStore.Protocol;
using GTStore.Transport;
using Microsoft.Extensions.Logging;

namespace GTStore.Manager;

/// <summary>Settings of the manager process (<c>gtstore manager</c>).</summary>
public sealed record ManagerOptions(string ListenAddress, string DataDirectory, ClusterConfig Config);

/// <summary>
/// The manager process: serves joins, client inits, status and leaves, and runs the
/// <see cref="ManagerMachine"/> on one loop. Its state is written durably to
/// <c>state.bin</c> in the data directory before any effect of a step leaves the process, so a
/// restarted manager forgets nothing it told anyone.
/// </summary>
public sealed class ManagerHost : IAsyncDisposable
{
    public const string StateFileName = "state.bin";

    private readonly ManagerOptions _options;
    private readonly ILogger _logger;
    private readonly Outbox _outbox = new();
    private readonly ManagerMachine _machine;
    private readonly RequestReplies _replies = new();
    private readonly PeerConnections _connections;
    private readonly PeerSender _sender;
    private readonly MachineLoop _loop;
    private FrameListener? _listener;

    private ManagerHost(ManagerOptions options, ManagerSnapshot? snapshot, ILogger logger)
    {
        _options = options;
        _logger = logger;
        _machine = new ManagerMachine(options.Config, _outbox, snapshot);
        _connections = new PeerConnections(OnFrameAsync, logger: logger);
        // The manager resends unacknowledged membership messages on its ticks; nothing to do here.
        _sender = new PeerSender(_connections, (_, _) => { }, logger);
        _loop = new MachineLoop(now => _machine.Tick(now), AfterStep);
    }

    public string Address => _listener?.Address ?? _options.ListenAddress;

    public Task Faulted => _loop.Completion;

    public static ManagerSnapshot? LoadState(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, StateFileName);
        if (!File.Exists(path))
            return null;
        var bytes = File.ReadAllBytes(path);
        var type = MessageCodec.TypeOf(new ManagerSnapshot(new ClusterConfig(), Ring.Empty, null, [], 1, 1));
        return (ManagerSnapshot)MessageCodec.Decode(type, bytes);
    }

    public static ManagerHost Start(ManagerOptions options, ILoggerFactory logs)
    {
        Directory.CreateDirectory(options.DataDirectory);
        var host = new ManagerHost(options, LoadState(options.DataDirectory), logs.CreateLogger("manager"));
        host._listener = FrameListener.Start(options.ListenAddress, host.OnFrameAsync, logger: host._logger);
        HostLog.Listening(host._logger, "manager", host._listener.Address);
        return host;
    }

    private async ValueTask OnFrameAsync(FrameConnection connection, Frame frame)
    {
        var message = RequestReplies.Decode(connection, frame, _logger);
        if (frame.RequestId != 0)
        {
            var handle = _replies.Register(connection, frame.RequestId);
            await _loop.PostAsync(now => _machine.OnRequest(now, handle, message)).ConfigureAwait(false);
        }
        else
        {
            await _loop.PostAsync(now => _machine.OnMessage(now, message)).ConfigureAwait(false);
        }
    }

    private void AfterStep()
    {
        if (_outbox.Persist is { } snapshot)
            DurableFile.WriteAtomically(Path.Combine(_options.DataDirectory, StateFileName), MessageCodec.Encode(snapshot));
        foreach (var (to, message) in _outbox.Sends)
            _sender.Send(to, _machine.AddressOf(to), message);
        foreach (var (handle, reply) in _outbox.Replies)
            _replies.Reply(handle, reply);
        _outbox.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        if (_listener is not null)
            await _listener.DisposeAsync().ConfigureAwait(false);
        await _loop.DisposeAsync().ConfigureAwait(false);
        await _sender.DisposeAsync().ConfigureAwait(false);
        await _connections.DisposeAsync().ConfigureAwait(false);
    }
}
