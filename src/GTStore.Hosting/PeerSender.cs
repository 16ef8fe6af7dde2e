using System.Collections.Concurrent;
using System.Threading.Channels;
using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Transport;
using Microsoft.Extensions.Logging;

namespace GTStore.Hosting;

/// <summary>
/// Carries a machine's one-way sends to peers without ever blocking its loop, in order per peer,
/// over a persistent connection. A message for a peer whose connection is open, with nothing of
/// that peer's waiting here, goes straight into the connection's send queue; otherwise it waits
/// in the peer's own queue for its pump, which connects (or waits for room) first. A message
/// that cannot be delivered (connect refused, connection lost) is handed back through
/// <c>onUnreachable</c>.
/// </summary>
public sealed class PeerSender : IAsyncDisposable
{
    /// <summary>Messages queued for one peer before further ones count as undeliverable.</summary>
    public const int PeerQueueMax = 65_536;

    /// <summary>One peer's queue, and how many of its messages the pump has not handed on yet.</summary>
    private sealed class Peer(Channel<(string? Address, Message Message)> queue)
    {
        public Channel<(string? Address, Message Message)> Queue { get; } = queue;

        /// <summary>Queued or being sent by the pump; guarded by locking the peer.</summary>
        public int Waiting;
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

    /// <summary>Messages sent straight into an open connection, without the peer's queue.</summary>
    public long SentDirect => Interlocked.Read(ref _sentDirect);

    private long _sentDirect;

    /// <summary>Queues <paramref name="message"/> for <paramref name="to"/> at <paramref name="address"/> (null: unknown, undeliverable).</summary>
    public void Send(NodeId to, string? address, Message message)
    {
        var peer = _peers.GetOrAdd(to, static (id, self) => self.Open(id), this);
        lock (peer)
        {
            // With nothing of this peer's left with the pump, the open connection's queue is the
            // end of the line: a message put there now stays behind every earlier one.
            if (peer.Waiting == 0 && address is not null && _connections.TryGetOpen(address, out var connection) && connection.TrySend(0, message))
            {
                Interlocked.Increment(ref _sentDirect); // Peers lock apart: two may count at once.
                return;
            }
            peer.Waiting++;
            if (peer.Queue.Writer.TryWrite((address, message)))
                return;
            peer.Waiting--;
        }
        _onUnreachable(to, message);
    }

    private Peer Open(NodeId id)
    {
        // The pump resumes on a pool thread, never inside Send's lock.
        var peer = new Peer(Channel.CreateBounded<(string?, Message)>(new BoundedChannelOptions(PeerQueueMax) { SingleReader = true }));
        _ = Task.Run(() => PumpAsync(id, peer));
        return peer;
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
                        await _connections.SendAsync(address, message, _stop.Token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is IOException or ArgumentException or TimeoutException)
                    {
                        HostLog.PeerUnreachable(_logger, id.ToString(), address ?? "?", e.Message);
                        _onUnreachable(id, message);
                    }
                    finally
                    {
                        lock (peer)
                            peer.Waiting--;
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
