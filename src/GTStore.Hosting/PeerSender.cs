using System.Collections.Concurrent;
using System.Threading.Channels;
using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Protocol;
using GTStore.Transport;
using Microsoft.Extensions.Logging;

namespace GTStore.Hosting;

/// <summary>
/// Carries a machine's one-way sends to peers without ever blocking its loop: one ordered queue
/// and one pump per peer over a persistent connection. A message that cannot be delivered
/// (connect refused, connection lost) is handed back through <c>onUnreachable</c>.
/// </summary>
public sealed class PeerSender : IAsyncDisposable
{
    /// <summary>Messages queued for one peer before further ones count as undeliverable.</summary>
    public const int PeerQueueMax = 65_536;

    private readonly PeerConnections _connections;
    private readonly Action<NodeId, Message> _onUnreachable;
    private readonly ConcurrentDictionary<NodeId, Channel<(string? Address, Message Message)>> _queues = new();
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
        var queue = _queues.GetOrAdd(to, peer =>
        {
            var channel = Channel.CreateBounded<(string?, Message)>(new BoundedChannelOptions(PeerQueueMax) { SingleReader = true, AllowSynchronousContinuations = true });
            _ = Task.Run(() => PumpAsync(peer, channel.Reader));
            return channel;
        });
        if (!queue.Writer.TryWrite((address, message)))
            _onUnreachable(to, message);
    }

    private async Task PumpAsync(NodeId peer, ChannelReader<(string? Address, Message Message)> reader)
    {
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
                            throw new ConnectionClosedException($"no address known for {peer}");
                        await _connections.SendAsync(address, MessageCodec.TypeOf(message), MessageCodec.Encode(message), _stop.Token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is IOException or ArgumentException or TimeoutException)
                    {
                        HostLog.PeerUnreachable(_logger, peer.ToString(), address ?? "?", e.Message);
                        _onUnreachable(peer, message);
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
        foreach (var q in _queues.Values)
            q.Writer.TryComplete();
        _stop.Dispose();
    }
}
