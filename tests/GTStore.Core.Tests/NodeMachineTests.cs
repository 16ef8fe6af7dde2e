using System.Text;
using GTStore.Core.Messages;
using static GTStore.Core.Tests.TestRings;

namespace GTStore.Core.Tests;

/// <summary>
/// One node as a state machine (DESIGN.md Request path: "client -> forwarder -> coordinator -> replicas").
/// </summary>
public sealed class NodeMachineTests
{
    private static readonly ClusterConfig Config3 = new() { ReplicationFactor = 3, ReadQuorum = 2, WriteQuorum = 2 };

    private static (NodeMachine Node, Outbox Out, FakeStore Store) Node(int id, Ring ring, ClusterConfig config) =>
        HandWired.Node(id, ring, config);

    /// <summary>A key whose preference list (N=3) on <paramref name="ring"/> starts with <paramref name="first"/>.</summary>
    private static byte[] KeyLedBy(Ring ring, NodeId first)
    {
        for (var i = 0; i < 100_000; i++)
        {
            var key = Encoding.UTF8.GetBytes($"k{i}");
            if (ring.PreferenceList(KeyHash.Of(key), 3)[0] == first)
                return key;
        }
        throw new InvalidOperationException("no key found");
    }

    [Fact]
    public void Node_refuses_client_requests_while_the_ring_has_fewer_than_N_nodes()
    {
        // Seed, Membership: "There must be at least N storage nodes running. Otherwise ... no request will be accepted."
        var (node, outbox, _) = Node(1, Grown(2, 3), Config3);
        node.OnClientRequest(0, 7, new ClientRequest(ClientOp.Put, [1], [2]));
        var (handle, reply) = Assert.Single(outbox.Replies);
        Assert.Equal(7, handle);
        var r = Assert.IsType<ClientReply>(reply);
        Assert.Equal(ReplyStatus.Failed, r.Status);
        Assert.Contains("2 of the 3 nodes", r.Error);
        Assert.Empty(outbox.Sends);
    }

    [Fact]
    public void Node_refuses_client_requests_before_it_has_joined()
    {
        var outbox = new Outbox();
        var node = new NodeMachine(new FakeStore(), outbox, 1);
        node.OnClientRequest(0, 1, new ClientRequest(ClientOp.Get, [1], null));
        var r = Assert.IsType<ClientReply>(Assert.Single(outbox.Replies).Reply);
        // Nothing was done: the client or forwarder may try another node.
        Assert.Equal(ReplyStatus.Moved, r.Status);
        Assert.Contains("not joined", r.Error);
    }

    [Fact]
    public void Node_answers_an_oversize_value_as_invalid_naming_the_limit()
    {
        var config = Config3 with { ValueBytesMax = 4 };
        var (node, outbox, _) = Node(1, Grown(3, 3), config);
        node.OnClientRequest(0, 1, new ClientRequest(ClientOp.Put, [1], new byte[5]));
        var r = Assert.IsType<ClientReply>(Assert.Single(outbox.Replies).Reply);
        Assert.Equal(ReplyStatus.Invalid, r.Status);
        Assert.Equal("value of 5 bytes exceeds the limit of 4 bytes", r.Error);
    }

    [Fact]
    public void Node_acknowledges_every_ring_update_to_the_manager()
    {
        var outbox = new Outbox();
        var node = new NodeMachine(new FakeStore(), outbox, 1);
        node.OnJoined(N(2), Config3);
        var ring = Grown(3, 3);
        node.OnMessage(0, new RingUpdate(Config3, ring, null));
        var (to, message) = Assert.Single(outbox.Sends);
        Assert.Equal(NodeId.Manager, to);
        Assert.Equal(new RingAck(N(2), ring.Epoch, 0), message);
    }

    [Fact]
    public void Coordinator_answers_a_write_after_W_acknowledgements()
    {
        // DESIGN.md Request path, Write: "writes locally, sends to the other N-1 replicas, and answers after W acknowledgements."
        var ring = Grown(3, 3);
        var (node, outbox, store) = Node(1, ring, Config3);
        var key = KeyLedBy(ring, N(1));
        node.OnClientRequest(1000, 5, new ClientRequest(ClientOp.Put, key, [42]));

        Assert.Empty(outbox.Replies);
        var writes = outbox.Sends.Where(s => s.Message is ReplicaWrite).ToList();
        Assert.Equal([N(2), N(3)], writes.Select(w => w.To).Order());
        Assert.Equal([(byte)42], store.Get(KeyHash.Of(key), key)!.Value.Value!);

        var opId = ((ReplicaWrite)writes[0].Message).OpId;
        outbox.Clear();
        node.OnMessage(1001, new ReplicaWriteAck(opId, N(3), true, null));
        var r = Assert.IsType<ClientReply>(Assert.Single(outbox.Replies).Reply);
        Assert.Equal(ReplyStatus.Ok, r.Status);
        Assert.Equal(N(1), r.Coordinator);
    }

    [Fact]
    public void Forwarder_not_in_the_preference_list_forwards_to_the_first_replica()
    {
        // Seed, Request Processing: "The forwarder can find out the preference list, and forwards the request to a node ... in the preference list."
        var ring = Grown(4, 3);
        var (node, outbox, _) = Node(4, ring, Config3);
        var key = HandWired.KeyNotOn(ring, N(4));
        node.OnClientRequest(0, 9, new ClientRequest(ClientOp.Put, key, [1]));
        var (to, message) = Assert.Single(outbox.Sends);
        Assert.Equal(ring.PreferenceList(KeyHash.Of(key), 3)[0], to);
        Assert.IsType<Forward>(message);
    }

    [Fact]
    public void Forwarder_not_in_the_preference_list_coordinates_a_read_itself()
    {
        // A read stamps no version, so the forwarder asks the replicas directly (no forward hop).
        var ring = Grown(4, 3);
        var (node, outbox, _) = Node(4, ring, Config3);
        var key = HandWired.KeyNotOn(ring, N(4));
        var hash = KeyHash.Of(key);
        node.OnClientRequest(0, 9, new ClientRequest(ClientOp.Get, key, null));
        // R of the N replicas are asked.
        var reads = outbox.Sends.Select(s => (s.To, Read: Assert.IsType<ReplicaRead>(s.Message))).ToList();
        Assert.Equal(2, reads.Select(r => r.To).Distinct().Count());
        Assert.All(reads, r => Assert.Contains(r.To, ring.PreferenceList(hash, 3)));
        outbox.Clear();
        var value = new VersionedValue(new Version(5, 1), [7]);
        node.OnMessage(1, new ReplicaReadReply(reads[0].Read.OpId, reads[0].To, true, value, null));
        Assert.Empty(outbox.Replies);
        node.OnMessage(2, new ReplicaReadReply(reads[1].Read.OpId, reads[1].To, true, null, null));
        var r = Assert.IsType<ClientReply>(Assert.Single(outbox.Replies).Reply);
        Assert.Equal((ReplyStatus.Ok, N(4)), (r.Status, r.Coordinator));
        Assert.Equal([(byte)7], r.Value!.Value.Value!);
    }

    [Fact]
    public void Anti_entropy_over_a_large_range_waits_in_proportion_before_its_next_round()
    {
        // At most SyncEntriesPerSecond entries summarised per second by the rounds a node starts.
        var ring = Grown(3, 3);
        var (node, outbox, store) = Node(1, ring, Config3);
        var first = ring.Partitions(3).First(p => Array.IndexOf(p.Replicas, N(1)) >= 0).Range;
        const int entries = 3 * NodeMachine.SyncEntriesPerSecond; // a round that costs 3 s of budget
        for (int i = 0, stored = 0; stored < entries; i++)
        {
            var key = Encoding.UTF8.GetBytes($"ae{i}");
            if (first.Contains(KeyHash.Of(key)))
            {
                store.Put(KeyHash.Of(key), key, new VersionedValue(new Version(1, 1), [1]));
                stored++;
            }
        }
        int Digests(long now)
        {
            outbox.Clear();
            node.Tick(now);
            return outbox.Sends.Count(s => s.Message is SyncDigest);
        }

        Assert.Equal(1, Digests(10_000));
        Assert.Equal(0, Digests(11_000)); // half a request timeout later: still within the 3 s
        Assert.Equal(0, Digests(12_900));
        Assert.Equal(1, Digests(13_000));
    }

    /// <summary>
    /// Node 1 of 3 (N=3, R=2) coordinates a GET of a key it replicates, holding <paramref name="mine"/>
    /// (null: nothing); returns the other replica it asked, which must be asked for its version only.
    /// </summary>
    private static (NodeMachine Node, Outbox Out, FakeStore Store, byte[] Key, NodeId Asked, long OpId) StartLocalRead(VersionedValue? mine)
    {
        var ring = Grown(3, 3);
        var (node, outbox, store) = Node(1, ring, Config3);
        var key = KeyLedBy(ring, N(1));
        if (mine is { } held)
            store.Put(KeyHash.Of(key), key, held);
        node.OnClientRequest(1000, 3, new ClientRequest(ClientOp.Get, key, null));
        var (to, message) = Assert.Single(outbox.Sends);
        var read = Assert.IsType<ReplicaRead>(message);
        Assert.True(read.VersionOnly);
        outbox.Clear();
        return (node, outbox, store, key, to, read.OpId);
    }

    [Fact]
    public void A_replica_coordinating_a_read_asks_the_others_for_their_version_only()
    {
        var mine = new VersionedValue(new Version(20, 1), [2]);
        var (node, outbox, _, _, to, opId) = StartLocalRead(mine);

        // The same version is the same write: our copy is answered, nothing to repair.
        node.OnMessage(1001, new ReplicaReadReply(opId, to, true, new VersionedValue(mine.Version, null), null, VersionOnly: true));
        var reply = Assert.IsType<ClientReply>(Assert.Single(outbox.Replies).Reply);
        Assert.Equal((ReplyStatus.Ok, mine.Version), (reply.Status, reply.Value!.Value.Version));
        Assert.Equal([(byte)2], reply.Value!.Value.Value!);
        Assert.Empty(outbox.Sends);
    }

    [Fact]
    public void An_older_version_only_answer_gets_our_copy_as_repair()
    {
        var mine = new VersionedValue(new Version(20, 1), [2]);
        var (node, outbox, _, _, to, opId) = StartLocalRead(mine);

        node.OnMessage(1001, new ReplicaReadReply(opId, to, true, new VersionedValue(new Version(10, 2), null), null, VersionOnly: true));
        var reply = Assert.IsType<ClientReply>(Assert.Single(outbox.Replies).Reply);
        Assert.Equal([(byte)2], reply.Value!.Value.Value!);
        var (repaired, repair) = Assert.Single(outbox.Sends);
        Assert.Equal(to, repaired);
        Assert.Equal(mine, Assert.IsType<ReplicaWrite>(repair).Value);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_newer_version_only_answer_is_read_again_in_full_before_the_read_answers(bool holdOwnCopy)
    {
        var theirs = new VersionedValue(new Version(20, 2), [2]);
        var (node, outbox, store, key, to, opId) = StartLocalRead(holdOwnCopy ? new VersionedValue(new Version(10, 1), [1]) : null);

        node.OnMessage(1001, new ReplicaReadReply(opId, to, true, new VersionedValue(theirs.Version, null), null, VersionOnly: true));
        Assert.Empty(outbox.Replies);
        var (again, reread) = Assert.Single(outbox.Sends);
        Assert.Equal(to, again);
        Assert.Equal((opId, false), (Assert.IsType<ReplicaRead>(reread).OpId, ((ReplicaRead)reread).VersionOnly));
        outbox.Clear();

        node.OnMessage(1002, new ReplicaReadReply(opId, to, true, theirs, null));
        var reply = Assert.IsType<ClientReply>(Assert.Single(outbox.Replies).Reply);
        Assert.Equal((theirs.Version, (byte)2), (reply.Value!.Value.Version, reply.Value!.Value.Value![0]));
        Assert.Equal(theirs, store.Get(KeyHash.Of(key), key)); // Our stale (or missing) copy is repaired.
    }

    [Fact]
    public void A_replica_asked_for_its_version_only_sends_no_value()
    {
        var ring = Grown(3, 3);
        var (node, outbox, store) = Node(2, ring, Config3);
        var key = KeyLedBy(ring, N(1));
        var held = new VersionedValue(new Version(20, 1), [1, 2, 3]);
        store.Put(KeyHash.Of(key), key, held);

        node.OnMessage(1000, new ReplicaRead(7, N(1), key, VersionOnly: true));
        var reply = Assert.IsType<ReplicaReadReply>(Assert.Single(outbox.Sends).Message);
        Assert.True(reply.Ok && reply.VersionOnly);
        Assert.Equal(held.Version, reply.Value!.Value.Version);
        Assert.Null(reply.Value!.Value.Value);
        outbox.Clear();

        node.OnMessage(1001, new ReplicaRead(8, N(1), [.. key, 0x7F], VersionOnly: true));
        var missing = Assert.IsType<ReplicaReadReply>(Assert.Single(outbox.Sends).Message);
        Assert.Null(missing.Value);
    }

    [Fact]
    public void Read_asks_R_replicas_itself_first_and_answers_the_latest_version_repairing_its_stale_copy()
    {
        // DESIGN.md Request path, Read: "answer with the highest version once R have answered, then
        // repair the stale replicas". Any R replicas overlap any W, so R are asked, this node first.
        var ring = Grown(3, 3);
        var (node, outbox, store) = Node(1, ring, Config3);
        var key = KeyLedBy(ring, N(1));
        var hash = KeyHash.Of(key);
        var old = new VersionedValue(new Version(10, 1), [1]);
        var latest = new VersionedValue(new Version(20, 2), [2]);
        store.Put(hash, key, old);

        node.OnClientRequest(1000, 3, new ClientRequest(ClientOp.Get, key, null));
        var (to, message) = Assert.Single(outbox.Sends);
        Assert.Contains(to, ring.PreferenceList(hash, 3)[1..]);
        var opId = Assert.IsType<ReplicaRead>(message).OpId;
        outbox.Clear();

        node.OnMessage(1001, new ReplicaReadReply(opId, to, true, latest, null));
        var reply = Assert.IsType<ClientReply>(Assert.Single(outbox.Replies).Reply);
        Assert.Equal(ReplyStatus.Ok, reply.Status);
        Assert.Equal(latest.Version, reply.Value!.Value.Version);
        // The coordinator's own stale copy is repaired locally; no one else was stale.
        Assert.Equal(latest.Version, store.Get(hash, key)!.Value.Version);
        Assert.Empty(outbox.Sends);
    }

    [Fact]
    public void Reads_of_one_key_spread_over_its_other_replicas()
    {
        // A Redis Cluster client sends every key of a slot to the same replica, which reads itself
        // and one other: rotating that other spreads the reads over both.
        var ring = Grown(3, 3);
        var (node, outbox, _) = Node(1, ring, Config3);
        var key = KeyLedBy(ring, N(1));
        var asked = new HashSet<NodeId>();
        for (var i = 0; i < 4; i++)
        {
            node.OnClientRequest(1000 + i, 3 + i, new ClientRequest(ClientOp.Get, key, null));
            asked.Add(Assert.Single(outbox.Sends).To);
            outbox.Clear();
        }
        Assert.Equal(ring.PreferenceList(KeyHash.Of(key), 3)[1..].ToHashSet(), asked);
    }

    [Fact]
    public void Read_asks_a_spare_replica_when_an_asked_one_fails_and_repairs_the_stale_one()
    {
        var ring = Grown(3, 3);
        var (node, outbox, store) = Node(1, ring, Config3);
        var key = KeyLedBy(ring, N(1));
        var hash = KeyHash.Of(key);
        var latest = new VersionedValue(new Version(20, 2), [2]);
        var list = ring.PreferenceList(hash, 3);

        node.OnClientRequest(1000, 3, new ClientRequest(ClientOp.Get, key, null));
        var (asked, read) = Assert.Single(outbox.Sends);
        var opId = Assert.IsType<ReplicaRead>(read).OpId;
        outbox.Clear();
        node.OnMessage(1001, new ReplicaReadReply(opId, asked, false, null, "disk read failed"));
        var (spare, message) = Assert.Single(outbox.Sends);
        Assert.Equal(list[1..].Single(r => r != asked), spare);
        Assert.IsType<ReplicaRead>(message);
        Assert.Empty(outbox.Replies);
        outbox.Clear();

        node.OnMessage(1002, new ReplicaReadReply(opId, spare, true, latest, null));
        var reply = Assert.IsType<ClientReply>(Assert.Single(outbox.Replies).Reply);
        Assert.Equal(latest.Version, reply.Value!.Value.Version);
        Assert.Equal(latest.Version, store.Get(hash, key)!.Value.Version);
    }

    [Fact]
    public void A_read_whose_asked_replicas_hold_nothing_asks_the_spare_before_answering_not_found()
    {
        // After a sloppy write, the replicas that were down hold nothing until their hints come
        // back; "not found" from R of them must not hide the copy on the third.
        var ring = Grown(3, 3);
        var (node, outbox, _) = Node(1, ring, Config3);
        var key = KeyLedBy(ring, N(1));
        var list = ring.PreferenceList(KeyHash.Of(key), 3);
        var written = new VersionedValue(new Version(30, 3), [3]);

        node.OnClientRequest(1000, 3, new ClientRequest(ClientOp.Get, key, null));
        var (asked, first) = Assert.Single(outbox.Sends);
        var opId = Assert.IsType<ReplicaRead>(first).OpId;
        outbox.Clear();
        node.OnMessage(1001, new ReplicaReadReply(opId, asked, true, null, null));
        Assert.Empty(outbox.Replies);
        var (spare, _) = Assert.Single(outbox.Sends);
        Assert.Equal(list[1..].Single(r => r != asked), spare);
        outbox.Clear();

        node.OnMessage(1002, new ReplicaReadReply(opId, spare, true, written, null));
        var reply = Assert.IsType<ClientReply>(Assert.Single(outbox.Replies).Reply);
        Assert.Equal((ReplyStatus.Ok, written.Version), (reply.Status, reply.Value!.Value.Version));

        // With every replica saying "not found", the answer is NotFound.
        outbox.Clear();
        node.OnClientRequest(2000, 4, new ClientRequest(ClientOp.Get, [.. key, 0x01], null));
        var read = outbox.Sends.Select(s => (s.To, Read: (ReplicaRead)s.Message)).ToList();
        outbox.Clear();
        foreach (var r in ring.PreferenceList(KeyHash.Of([.. key, 0x01]), 3).Where(r => r != N(1)))
            node.OnMessage(2001, new ReplicaReadReply(read[0].Read.OpId, r, true, null, null));
        Assert.Equal(ReplyStatus.NotFound, Assert.IsType<ClientReply>(Assert.Single(outbox.Replies).Reply).Status);
    }

    [Fact]
    public void Replica_refuses_a_write_for_a_key_it_does_not_replicate()
    {
        var ring = Grown(4, 3);
        var (node, outbox, store) = Node(4, ring, Config3);
        var key = HandWired.KeyNotOn(ring, N(4));
        node.OnMessage(0, new ReplicaWrite(11, N(1), key, new VersionedValue(new Version(5, 1), [1])));
        var ack = Assert.IsType<ReplicaWriteAck>(Assert.Single(outbox.Sends).Message);
        Assert.False(ack.Ok);
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public void Coordinator_stamps_above_the_version_it_holds_even_when_its_clock_is_behind()
    {
        // DESIGN.md Request path, Write: "the coordinator stamps a version (HLC, and never below what it holds for that key)".
        var ring = Grown(3, 3);
        var (node, outbox, store) = Node(1, ring, Config3);
        var key = KeyLedBy(ring, N(1));
        var future = new VersionedValue(new Version(1L << 50, 3), [7]);
        store.Put(KeyHash.Of(key), key, future);
        node.OnClientRequest(5, 1, new ClientRequest(ClientOp.Put, key, [8]));
        var held = store.Get(KeyHash.Of(key), key)!.Value;
        Assert.True(held.Version > future.Version);
        Assert.Equal([(byte)8], held.Value!);
    }
}
