using System.Collections.Concurrent;
using System.Threading.Channels;
using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Protocol;
using GTStore.Transport;
using Microsoft.Extensions.Logging;

namespace GTStore.Hosting;

/// <summary>
/// Carries a machine's one-way sends to peers without ever blocking its loop. A message to a peer
/// whose connection is open (and has nothing queued behind a connect) is queued on that connection
/// at once, on the caller's thread; otherwise it waits in the peer's ordered queue, whose pump
/// connects and sends. A message that cannot be delivered (connect refused, connection lost) is
/// handed back through <c>onUnreachable</c>.
/// </summary>
public sealed class PeerSender : IAsyncDisposable
{
    /// <summary>Messages queued for one peer before further ones count as undeliverable.</summary>
    public const int PeerQueueMax = 65_536;

    private sealed class Peer(Channel<(string? Address, Message Message)> queue)
    {
        public Channel<(string? Address, Message Message)> Queue { get; } = queue;

        /// <summary>Messages in the queue or being sent by the pump: while any, new ones queue behind them (order).</summary>
        public int Backlog;

        /// <summary>1 once the pump runs.</summary>
        public int Pumping;
    }

    private readonly PeerConnections _connections;
    private readonly Action<NodeId, Message> _onUnreachable;
    private readonly ConcurrentDictionary<NodeId, Peer> _peers = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _logger;

    public PeerSender(PeerConnections connections, Action<NodeId, Message> onUnreachable, ILogger logger)
    {
        _connections = connections;
        _onUnreachable = onUnreachable;
        _logger = logger;
    }

    /// <summary>Queues <paramref name="message"/> for <paramref name="to"/> at <paramref name="address"/> (null: unknown, undeliverable).</summary>
    public void Send(NodeId to, string? address, Message message)
    {
        var peer = _peers.GetOrAdd(to, static _ =>
            new Peer(Channel.CreateBounded<(string?, Message)>(new BoundedChannelOptions(PeerQueueMax) { SingleReader = true })));
        if (Volatile.Read(ref peer.Pumping) == 0 && Interlocked.Exchange(ref peer.Pumping, 1) == 0)
            _ = Task.Run(() => PumpAsync(to, peer));
        if (Volatile.Read(ref peer.Backlog) == 0 && address is not null && _connections.TryGetOpen(address, out var connection)
            && connection.TrySend(MessageCodec.TypeOf(message), 0, MessageCodec.Encode(message)))
        {
            return;
        }
        Interlocked.Increment(ref peer.Backlog);
        if (!peer.Queue.Writer.TryWrite((address, message)))
        {
            Interlocked.Decrement(ref peer.Backlog);
            _onUnreachable(to, message);
        }
    }

    private async Task PumpAsync(NodeId id, Peer peer)
    {
        var reader = peer.Queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var item))
                {
                    var (address, message) = item;
                    try
                    {
                        if (address is null)
                            throw new ConnectionClosedException($"no address known for {id}");
                        await _connections.SendAsync(address, MessageCodec.TypeOf(message), MessageCodec.Encode(message), _stop.Token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is IOException or ArgumentException or TimeoutException)
                    {
                        HostLog.PeerUnreachable(_logger, id.ToString(), address ?? "?", e.Message);
                        _onUnreachable(id, message);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref peer.Backlog);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var peer in _peers.Values)
            peer.Queue.Writer.TryComplete();
        _stop.Dispose();
    }
}
