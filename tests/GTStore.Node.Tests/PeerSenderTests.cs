using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Hosting;
using GTStore.Protocol;
using GTStore.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace GTStore.Node.Tests;

public sealed class PeerSenderTests
{
    private static readonly NodeId Peer = new(2);

    /// <summary>
    /// The first messages wait in the peer's queue while its connection opens; once the queue is
    /// empty and the connection open, messages go straight into the connection. No message may
    /// overtake one sent before it across that switch.
    /// </summary>
    [Fact]
    public async Task Messages_keep_their_order_when_they_switch_from_the_peers_queue_to_its_open_connection()
    {
        var received = new List<long>();
        (long Count, TaskCompletionSource Reached) awaited = (0, new());
        // Completes once at least count messages have arrived.
        Task Received(long count)
        {
            lock (received)
            {
                awaited = (count, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                if (received.Count >= count)
                    awaited.Reached.TrySetResult();
                return awaited.Reached.Task.WaitAsync(TimeSpan.FromSeconds(60));
            }
        }
        await using var listener = FrameListener.Start("127.0.0.1:0", (_, frame) =>
        {
            var ack = (ReplicaWriteAck)MessageCodec.Decode(frame.Type, frame.Payload.Span);
            lock (received)
            {
                received.Add(ack.OpId);
                if (received.Count >= awaited.Count)
                    awaited.Reached.TrySetResult();
            }
            return ValueTask.CompletedTask;
        });
        await using var connections = new PeerConnections(null);
        var unreachable = 0;
        await using var sender = new PeerSender(connections, (_, _) => Interlocked.Increment(ref unreachable), NullLogger.Instance);

        long sent = 0;
        void SendNext() => sender.Send(Peer, listener.Address, new ReplicaWriteAck(sent++, new NodeId(1), true, null));

        for (var i = 0; i < 20_000; i++)
            SendNext(); // no connection yet: all of these wait for the pump
        Assert.Equal(0, sender.SentDirect);
        using (var connectWithin = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            await connections.GetAsync(listener.Address, connectWithin.Token);
        for (var i = 0; i < 20_000; i++)
            SendNext(); // while the pump drains its backlog: a direct send now would overtake it
        // Until the pump has handed on its last queued message, sends still join the queue. Every
        // 500 sends wait for all of them to arrive, so the pump catches up and the queue
        // (PeerQueueMax) never fills.
        while (sender.SentDirect < 1000 && sent < 60_000)
        {
            SendNext();
            if (sent % 500 == 0)
                await Received(sent);
        }
        await Received(sent);

        Assert.Equal(0, Volatile.Read(ref unreachable));
        Assert.Equal(1000, sender.SentDirect);
        lock (received)
            Assert.Equal(Enumerable.Range(0, (int)sent).Select(i => (long)i), received);
    }

    [Fact]
    public async Task Messages_to_a_peer_that_refuses_connections_come_back_as_unreachable()
    {
        var dead = Path.Combine(Path.GetTempPath(), $"gtstore-peersender-{Guid.NewGuid():N}.sock");
        await using var connections = new PeerConnections(null);
        var unreachable = new TaskCompletionSource<Message>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var sender = new PeerSender(connections, (_, m) => unreachable.TrySetResult(m), NullLogger.Instance);

        var message = new ReplicaWriteAck(7, new NodeId(1), true, null);
        sender.Send(Peer, dead, message);

        Assert.Same(message, await unreachable.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, sender.SentDirect);
    }

    [Fact]
    public async Task A_message_too_large_for_a_frame_is_dropped_and_the_connection_carries_the_next()
    {
        var received = new TaskCompletionSource<Message>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var listener = FrameListener.Start("127.0.0.1:0", (_, frame) =>
        {
            received.TrySetResult(MessageCodec.Decode(frame.Type, frame.Payload.Span));
            return ValueTask.CompletedTask;
        });
        await using var connections = new PeerConnections(null);
        var connection = await connections.GetAsync(listener.Address, CancellationToken.None);

        var oversize = new ReplicaWrite(1, new NodeId(1), [1, 2, 3], new VersionedValue(new Core.Version(5, 1), new byte[Limits.FrameBytesMax]));
        var next = new ReplicaWrite(2, new NodeId(1), [4, 5, 6], new VersionedValue(new Core.Version(6, 1), [7, 8]));
        await connection.SendAsync(0, oversize);
        await connection.SendAsync(0, next);

        var got = Assert.IsType<ReplicaWrite>(await received.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(2, got.OpId);
        Assert.Equal(next.Key, got.Key);
        Assert.Equal(next.Value.Value, got.Value.Value);
        Assert.Equal(next.Value.Version, got.Value.Version);
        Assert.False(connection.IsClosed);
    }
}
