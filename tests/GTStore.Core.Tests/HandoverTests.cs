using System.Text;
using GTStore.Core.Messages;
using static GTStore.Core.Tests.TestRings;

namespace GTStore.Core.Tests;

/// <summary>
/// A node that stops replicating a range it did not stream (the plan left it out: it was down or
/// cut off) hands the range over itself before dropping it (NodeMachine.Handover.cs); its copy may
/// be the only one of a write or a tombstone. Found by simulation seeds 1295958975 (a deleted key
/// came back) and 200044 (a leaver cut off during its leave exited with the only copy left).
/// </summary>
public sealed class HandoverTests
{
    private static readonly ClusterConfig Config3 = new() { ReplicationFactor = 3, ReadQuorum = 2, WriteQuorum = 2 };

    private static readonly VersionedValue Older = new(new Version(HybridClock.AtPhysicalMs(1_000), 1), [1]);
    private static readonly VersionedValue Newer = new(new Version(HybridClock.AtPhysicalMs(2_000), 2), [2]);

    private sealed class Cluster
    {
        public Dictionary<NodeId, (NodeMachine Node, Outbox Out, FakeStore Store)> Nodes { get; } = [];
        public long NowMs { get; set; } = 10_000;

        public Cluster(Ring ring, IEnumerable<int> ids)
        {
            foreach (var id in ids)
                Nodes[N(id)] = HandWired.Node(id, ring, Config3);
        }

        public NodeMachine this[NodeId id] => Nodes[id].Node;

        public void Deliver(NodeId to, Message m) => Nodes[to].Node.OnMessage(NowMs, m);

        public void ToAll(Message m)
        {
            foreach (var id in Nodes.Keys)
                Deliver(id, m);
        }

        /// <summary>Messages between nodes until none is left; <paramref name="drop"/> loses some. Returns what went to the manager.</summary>
        public List<(NodeId From, Message Message)> Pump(Func<NodeId, NodeId, Message, bool>? drop = null)
        {
            var toManager = new List<(NodeId, Message)>();
            for (var round = 0; round < 1_000; round++)
            {
                var sends = Nodes.SelectMany(n => n.Value.Out.Sends.Select(s => (From: n.Key, s.To, s.Message))).ToList();
                foreach (var n in Nodes.Values)
                    n.Out.Clear();
                if (sends.Count == 0)
                    return toManager;
                foreach (var (from, to, message) in sends)
                {
                    if (to == NodeId.Manager)
                        toManager.Add((from, message));
                    else if (Nodes.ContainsKey(to) && drop?.Invoke(from, to, message) != true)
                        Deliver(to, message);
                }
            }
            throw new InvalidOperationException("messages did not settle");
        }

        /// <summary>The change's plan as the manager makes it, with <paramref name="unavailable"/> left out as sources, streamed to the end.</summary>
        public void Transfer(Ring old, Ring next, params NodeId[] unavailable)
        {
            ToAll(new RingUpdate(Config3, old, next));
            Pump();
            var plan = TransferPlanner.Plan(old, next, 3, unavailable: unavailable.ToHashSet());
            var id = StartTransfers.IdFor(next.Epoch, 0);
            foreach (var group in plan.Select((task, index) => (index, task)).GroupBy(t => t.task.Source))
                Deliver(group.Key, new StartTransfers(id, group.ToList()));
            var done = Pump().Count(m => m.Message is TransferTaskDone);
            Assert.Equal(plan.Count, done);
        }

        public VersionedValue? Held(NodeId id, byte[] key) => Nodes[id].Store.Get(KeyHash.Of(key), key);

        public List<(NodeId To, TransferBatch Batch)> Batches(NodeId from) =>
            [.. Nodes[from].Out.Sends.Where(s => s.Message is TransferBatch).Select(s => (s.To, (TransferBatch)s.Message))];
    }

    /// <summary>
    /// Nodes <paramref name="ids"/> on <paramref name="old"/>, and a key that moves off
    /// <paramref name="x"/> on <paramref name="next"/> (and, if given, off it on
    /// <paramref name="later"/> too): <paramref name="x"/> holds the only copy of its newest
    /// version, the key's other replicas an older one.
    /// </summary>
    private static (Cluster C, byte[] Key) WithKeyMovingOff(NodeId x, Ring old, Ring next, int[] ids, Ring? later = null)
    {
        var key = Enumerable.Range(0, 100_000).Select(i => Encoding.UTF8.GetBytes($"k{i}")).First(k =>
            old.IsReplica(x, KeyHash.Of(k), 3) && !next.IsReplica(x, KeyHash.Of(k), 3) && later?.IsReplica(x, KeyHash.Of(k), 3) != true);
        var c = new Cluster(old, ids);
        foreach (var replica in old.PreferenceList(KeyHash.Of(key), 3))
            c.Nodes[replica].Store.Put(KeyHash.Of(key), key, replica == x ? Newer : Older);
        return (c, key);
    }

    /// <summary>Four nodes and a fifth joining, which takes a key from <paramref name="x"/> (see <see cref="WithKeyMovingOff"/>).</summary>
    private static (Cluster C, Ring Old, Ring Next, byte[] Key, NodeId Joiner) JoinTakingAKeyFrom(NodeId x)
    {
        var old = Grown(4, 3);
        var next = TokenAllocator.Join(old, N(5), "sim://5", 3, old.Epoch + 1);
        var (c, key) = WithKeyMovingOff(x, old, next, [1, 2, 3, 4, 5]);
        return (c, old, next, key, N(5));
    }

    /// <summary>Four nodes, and <paramref name="x"/> leaving them with a key only it holds the newest version of.</summary>
    private static (Cluster C, Ring Old, Ring Next, byte[] Key) LeaveOf(NodeId x)
    {
        var old = Grown(4, 3);
        var next = TokenAllocator.Leave(old, x, old.Epoch + 1);
        var (c, key) = WithKeyMovingOff(x, old, next, [1, 2, 3, 4]);
        return (c, old, next, key);
    }

    private static long HeartbeatFloor(Cluster c, NodeId id)
    {
        c.NowMs += Config3.HeartbeatIntervalMs;
        c[id].Tick(c.NowMs);
        var floor = c.Nodes[id].Out.Sends.Select(s => s.Message).OfType<Heartbeat>().Single().HintFloor;
        c.Nodes[id].Out.Sends.RemoveAll(s => s.Message is Heartbeat);
        return floor;
    }

    [Fact]
    public void A_node_the_plan_left_out_hands_its_copy_to_the_new_replica_before_dropping_it()
    {
        var x = N(2);
        var (c, old, next, key, joiner) = JoinTakingAKeyFrom(x);
        c.Transfer(old, next, unavailable: x);
        Assert.Equal(Older, c.Held(joiner, key)); // The plan streamed only the others' older copies.

        c.ToAll(new RingUpdate(Config3, next, null)); // Committed.
        var handovers = c.Batches(x);
        Assert.NotEmpty(handovers);
        Assert.All(handovers, b => Assert.Equal(x, b.Batch.From));
        Assert.Contains(handovers, b => b.To == joiner && b.Batch.Entries.Any(e => e.Key.AsSpan().SequenceEqual(key)));
        Assert.Equal(Newer, c.Held(x, key)); // Kept until the handover is acknowledged...
        Assert.True(c[x].HandoversInProgress > 0);
        Assert.Equal(c[x].HandoversInProgress, c[x].Stats().Handovers); // status --json and INFO gtstore show it.
        Assert.Equal(0, HeartbeatFloor(c, x)); // ...and no tombstone may be purged meanwhile.

        c.Pump();
        Assert.Equal(Newer, c.Held(joiner, key));
        Assert.Null(c.Held(x, key)); // Dropped once the last handover was acknowledged.
        Assert.Equal(0, c[x].HandoversInProgress);
        Assert.NotEqual(0, HeartbeatFloor(c, x));
    }

    [Fact]
    public void A_node_that_streamed_its_ranges_in_the_plan_hands_nothing_over_and_drops_at_once()
    {
        var x = N(2);
        var (c, old, next, key, joiner) = JoinTakingAKeyFrom(x);
        c.Transfer(old, next);
        Assert.Equal(Newer, c.Held(joiner, key));

        c.ToAll(new RingUpdate(Config3, next, null));
        Assert.Empty(c.Batches(x));
        Assert.Null(c.Held(x, key));
        Assert.Equal(0, c[x].HandoversStarted);
    }

    [Fact]
    public void A_handover_that_is_not_acknowledged_is_sent_again()
    {
        var x = N(2);
        var (c, old, next, key, joiner) = JoinTakingAKeyFrom(x);
        c.Transfer(old, next, unavailable: x);
        c.ToAll(new RingUpdate(Config3, next, null));
        c.Pump(drop: (from, _, m) => from == x && m is TransferBatch); // Lost on the way.
        Assert.Equal(Older, c.Held(joiner, key));
        Assert.Equal(Newer, c.Held(x, key));

        c.NowMs += Config3.RequestTimeoutMs;
        c[x].Tick(c.NowMs);
        c.Pump();
        Assert.Equal(Newer, c.Held(joiner, key));
        Assert.Null(c.Held(x, key));
    }

    [Fact]
    public void A_node_that_left_while_cut_off_hands_its_data_over_before_it_may_exit()
    {
        var x = N(2);
        var (c, old, next, key) = LeaveOf(x);
        c.Transfer(old, next, unavailable: x);

        c.ToAll(new RingUpdate(Config3, next, null));
        Assert.Empty(c.Batches(x)); // Taken out of the ring: left, or removed? LeaveDone tells.
        c.Deliver(x, new LeaveDone(x));
        Assert.True(c.Nodes[x].Out.Exit);
        Assert.NotEmpty(c.Batches(x));
        Assert.False(c[x].IsDrained); // The host waits for the handovers before the process exits.

        c.Pump();
        Assert.True(c[x].IsDrained);
        var newReplicas = next.PreferenceList(KeyHash.Of(key), 3);
        Assert.Contains(newReplicas, r => c.Held(r, key) == Newer);
    }

    [Fact]
    public void A_node_that_left_after_streaming_its_ranges_hands_nothing_over_and_may_exit_at_once()
    {
        var x = N(2);
        var (c, old, next, _) = LeaveOf(x);
        c.Transfer(old, next);
        c.ToAll(new RingUpdate(Config3, next, null));
        c.Deliver(x, new LeaveDone(x));
        Assert.Empty(c.Batches(x));
        Assert.Equal(0, c[x].HandoversStarted);
        Assert.True(c[x].IsDrained);
    }

    [Fact]
    public void A_node_removed_while_cut_off_hands_nothing_over()
    {
        // A removed node's copies may be far behind (it was gone past the failure timeout); the
        // cluster re-replicated without it, and a stale copy could bring back a purged delete.
        var x = N(2);
        var (c, old, next, _) = LeaveOf(x);
        c.Transfer(old, next, unavailable: x);
        c.ToAll(new RingUpdate(Config3, next, null));
        c.NowMs += Config3.RequestTimeoutMs;
        c[x].Tick(c.NowMs);
        Assert.Empty(c.Batches(x));
        Assert.Equal(0, c[x].HandoversStarted);
    }

    [Fact]
    public void An_unfinished_handover_goes_to_the_replicas_of_the_next_committed_ring()
    {
        // x's handover to the joiner is lost; a sixth node joins before it is resent. The key
        // stays off x, so x must hand it to the key's replicas in the ring that joiner commits.
        var x = N(2);
        var old = Grown(4, 3);
        var next = TokenAllocator.Join(old, N(5), "sim://5", 3, old.Epoch + 1);
        var after = TokenAllocator.Join(next, N(6), "sim://6", 3, next.Epoch + 1);
        var (c, key) = WithKeyMovingOff(x, old, next, [1, 2, 3, 4, 5, 6], later: after);
        c.Transfer(old, next, unavailable: x);
        c.ToAll(new RingUpdate(Config3, next, null));
        var first = c.Batches(x).Select(b => b.Batch.TransferId).Distinct().Single();
        c.Pump(drop: (from, _, m) => from == x && m is TransferBatch); // The joiner never gets them.

        c.Transfer(next, after);
        c.ToAll(new RingUpdate(Config3, after, null));
        var retargeted = c.Batches(x).Where(b => b.Batch.TransferId != first).ToList();
        Assert.Contains(retargeted, b => b.Batch.Entries.Any(e => e.Key.AsSpan().SequenceEqual(key)));
        Assert.All(retargeted, b => Assert.All(b.Batch.Entries, e =>
            Assert.True(after.IsReplica(b.To, e.Hash, 3), $"{b.To} got {Encoding.UTF8.GetString(e.Key)}, which it does not replicate")));
        Assert.Equal(Newer, c.Held(x, key)); // Kept until the handover is acknowledged.

        c.Pump();
        Assert.Equal(0, c[x].HandoversInProgress);
        Assert.All(after.PreferenceList(KeyHash.Of(key), 3), r => Assert.Equal(Newer, c.Held(r, key)));
        Assert.Null(c.Held(x, key));
    }
}
