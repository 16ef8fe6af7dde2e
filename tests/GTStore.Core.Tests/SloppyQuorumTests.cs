using System.Text;
using GTStore.Core.Messages;
using static GTStore.Core.Tests.TestRings;

namespace GTStore.Core.Tests;

/// <summary>
/// Sloppy quorum, hinted handoff and anti-entropy on a few node machines wired by hand (Dynamo
/// sections 4.6 and 4.7; DESIGN.md Request path: "A replica that does not answer in time is
/// replaced by the next node on the ring (sloppy quorum)").
/// </summary>
public sealed class SloppyQuorumTests
{
    private static readonly ClusterConfig Config = new() { ReplicationFactor = 3, ReadQuorum = 2, WriteQuorum = 2 };

    /// <summary>Five nodes; messages to nodes in <see cref="Down"/> are lost (a crash).</summary>
    private sealed class Cluster
    {
        public Cluster()
        {
            Ring = Grown(5, 3);
            Nodes = HandWired.Nodes(Ring, Config);
        }

        public Ring Ring { get; }
        public Dictionary<NodeId, (NodeMachine Node, Outbox Out, FakeStore Store)> Nodes { get; }
        public HashSet<NodeId> Down { get; } = [];
        public List<ClientReply> Replies { get; } = [];
        public long NowMs { get; set; } = 1_000;

        /// <summary>Delivers every queued message until none is left (bounded).</summary>
        public void Run(int rounds = 1000)
        {
            for (var i = 0; i < rounds; i++)
            {
                var sends = Nodes.SelectMany(kv => kv.Value.Out.Sends.Select(s => (From: kv.Key, s.To, s.Message))).ToList();
                foreach (var (_, outbox, _) in Nodes.Values)
                {
                    Replies.AddRange(outbox.Replies.Select(r => (ClientReply)r.Reply));
                    outbox.Clear();
                }
                if (sends.Count == 0)
                    return;
                foreach (var (_, to, message) in sends)
                {
                    if (to.IsNode && !Down.Contains(to))
                        Nodes[to].Node.OnMessage(NowMs, message);
                }
            }
        }

        public void Tick(long ms)
        {
            NowMs += ms;
            foreach (var (id, n) in Nodes)
            {
                if (!Down.Contains(id))
                    n.Node.Tick(NowMs);
            }
            Run();
        }

        public byte[] KeyWithReplicas(out NodeId[] replicas)
        {
            var key = Encoding.UTF8.GetBytes("key-1");
            replicas = Ring.PreferenceList(KeyHash.Of(key), 3);
            return key;
        }
    }

    [Fact]
    public void A_write_with_two_replicas_down_succeeds_through_stand_ins_and_is_handed_back()
    {
        var c = new Cluster();
        var key = c.KeyWithReplicas(out var replicas);
        c.Down.Add(replicas[1]);
        c.Down.Add(replicas[2]);
        var coordinator = c.Nodes[replicas[0]].Node;
        coordinator.OnClientRequest(c.NowMs, 1, new ClientRequest(ClientOp.Put, key, [42]));
        c.Run();
        Assert.Empty(c.Replies); // only the coordinator acked; the others are silent
        c.Tick(Config.RequestTimeoutMs / 4 + 1);
        var reply = Assert.Single(c.Replies);
        Assert.Equal(ReplyStatus.Ok, reply.Status);
        var standIns = c.Nodes.Where(kv => kv.Value.Node.HintCount > 0).Select(kv => kv.Key).ToList();
        Assert.NotEmpty(standIns);
        Assert.DoesNotContain(replicas[1], standIns);
        Assert.DoesNotContain(replicas[2], standIns);

        // The replicas come back: hints go home and are dropped only once acknowledged.
        c.Down.Clear();
        for (var i = 0; i < 10 && c.Nodes.Values.Any(n => n.Node.HintCount > 0); i++)
            c.Tick(Config.FailureTimeoutMs);
        Assert.All(c.Nodes.Values, n => Assert.Equal(0, n.Node.HintCount));
        var hash = KeyHash.Of(key);
        foreach (var r in replicas)
            Assert.Equal([42], c.Nodes[r].Store.Get(hash, key)!.Value.Value);
    }

    [Fact]
    public void A_read_with_a_replica_down_reaches_its_quorum_through_a_stand_in()
    {
        var c = new Cluster();
        var key = c.KeyWithReplicas(out var replicas);
        c.Nodes[replicas[0]].Node.OnClientRequest(c.NowMs, 1, new ClientRequest(ClientOp.Put, key, [7]));
        c.Run();
        c.Replies.Clear();
        c.Down.Add(replicas[1]);
        c.Down.Add(replicas[2]);
        c.Nodes[replicas[0]].Node.OnClientRequest(c.NowMs, 2, new ClientRequest(ClientOp.Get, key, null));
        c.Run();
        c.Tick(Config.RequestTimeoutMs / 4 + 1);
        var reply = Assert.Single(c.Replies);
        Assert.Equal(ReplyStatus.Ok, reply.Status);
        Assert.Equal([7], reply.Value!.Value.Value);
    }

    [Fact]
    public void A_committed_ring_keeps_the_stored_copy_of_a_hint_so_it_survives_a_crash()
    {
        var c = new Cluster();
        var key = c.KeyWithReplicas(out var replicas);
        var hash = KeyHash.Of(key);
        c.Down.Add(replicas[1]);
        c.Down.Add(replicas[2]);
        c.Nodes[replicas[0]].Node.OnClientRequest(c.NowMs, 1, new ClientRequest(ClientOp.Put, key, [5]));
        c.Run();
        c.Tick(Config.RequestTimeoutMs / 4 + 1);
        Assert.Equal(ReplyStatus.Ok, Assert.Single(c.Replies).Status);
        var standIn = c.Nodes.First(n => !replicas.Contains(n.Key) && n.Value.Store.Get(hash, key) is not null).Key;
        var (node, _, store) = c.Nodes[standIn];
        Assert.Equal(1, node.HintCount);

        // A later committed ring (same placement, next epoch) drops what the stand-in does not own...
        var next = new Ring(c.Ring.Epoch + 1, c.Ring.Tokens, c.Ring.Members);
        node.OnMessage(c.NowMs, new RingUpdate(Config, next, null));

        // ...but not the copy behind its hint: a crash now would still bring the hint back.
        Assert.Equal([(byte)5], store.Get(hash, key)!.Value.Value!);
        Assert.Equal(1, node.HintCount);
    }

    [Fact]
    public void A_stand_in_reports_its_oldest_hint_in_heartbeats_until_the_hint_is_handed_back()
    {
        // The manager's purge floor is the lowest of these: a tombstone newer than a hint somewhere
        // must not be purged, or handing the hint back would bring the deleted value back.
        var c = new Cluster();
        var key = c.KeyWithReplicas(out var replicas);
        c.Down.Add(replicas[1]);
        c.Down.Add(replicas[2]);
        c.Nodes[replicas[0]].Node.OnClientRequest(c.NowMs, 1, new ClientRequest(ClientOp.Put, key, [5]));
        c.Run();
        c.Tick(Config.RequestTimeoutMs / 4 + 1);
        var (standIn, _, store) = c.Nodes.Values.First(n => !replicas.Contains(n.Node.Self) && n.Node.HintCount > 0);
        var hinted = store.Get(KeyHash.Of(key), key)!.Value.Version.Timestamp;
        Assert.True(HeartbeatFloor(c, standIn) <= hinted);

        c.Down.Clear();
        for (var i = 0; i < 10 && c.Nodes.Values.Any(n => n.Node.HintCount > 0); i++)
            c.Tick(Config.FailureTimeoutMs);
        Assert.Equal(0, standIn.HintCount);
        Assert.True(HeartbeatFloor(c, standIn) > hinted);
    }

    /// <summary>The floor in the heartbeat <paramref name="node"/> sends at its next heartbeat time.</summary>
    private static long HeartbeatFloor(Cluster c, NodeMachine node)
    {
        c.NowMs += Config.HeartbeatIntervalMs;
        var outbox = c.Nodes[node.Self].Out;
        outbox.Clear();
        node.Tick(c.NowMs);
        var heartbeat = outbox.Sends.Select(s => s.Message).OfType<Heartbeat>().Single();
        outbox.Clear();
        return heartbeat.HintFloor;
    }

    [Fact]
    public void Anti_entropy_brings_a_replica_that_missed_writes_up_to_date_without_reads()
    {
        var c = new Cluster();
        var key = c.KeyWithReplicas(out var replicas);
        var lagging = replicas[2];
        // The lagging replica misses the write entirely (no hint, no read).
        c.Down.Add(lagging);
        c.Nodes[replicas[0]].Node.OnClientRequest(c.NowMs, 1, new ClientRequest(ClientOp.Put, key, [9]));
        c.Run();
        foreach (var n in c.Nodes.Values)
            n.Out.Clear();
        c.Down.Clear();
        var hash = KeyHash.Of(key);
        Assert.Null(c.Nodes[lagging].Store.Get(hash, key));
        // Background rounds: each node summarises one range per round; bounded number of rounds.
        for (var i = 0; i < 200 && c.Nodes[lagging].Store.Get(hash, key) is null; i++)
            c.Tick(Config.RequestTimeoutMs / 2);
        Assert.Equal([9], c.Nodes[lagging].Store.Get(hash, key)!.Value.Value);
    }
}
