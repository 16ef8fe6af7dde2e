using GTStore.Core.Messages;
using static GTStore.Core.Tests.TestRings;

namespace GTStore.Core.Tests;

/// <summary>
/// The manager as a state machine (DESIGN.md Layers: "inputs ... and returns effects"), driven here
/// by scripted nodes that acknowledge every ring update and finish every transfer at once.
/// </summary>
public sealed class ManagerMachineTests
{
    private sealed class Harness
    {
        public Harness(ClusterConfig config)
        {
            Manager = new ManagerMachine(config, Out);
        }

        public Outbox Out { get; } = new();

        public ManagerMachine Manager { get; }

        public long NowMs { get; set; } = 1000;

        private long _nextHandle = 1;

        /// <summary>Every reply the manager gave, by request handle.</summary>
        public List<(long Handle, Message Reply)> Replies { get; } = [];

        /// <summary>Sends a request without letting the nodes answer; returns its handle.</summary>
        public long Send(Message request)
        {
            var handle = _nextHandle++;
            Manager.OnRequest(NowMs, handle, request);
            return handle;
        }

        /// <summary>Sends a request and returns its replies after the cluster settles.</summary>
        public List<Message> Request(Message request)
        {
            var handle = Send(request);
            Settle();
            return RepliesTo(handle);
        }

        public List<Message> RepliesTo(long handle) => [.. Replies.Where(r => r.Handle == handle).Select(r => r.Reply)];

        /// <summary>Plays the nodes: ack each ring update, finish each transfer; bounded rounds.</summary>
        public void Settle()
        {
            for (var round = 0; round < 1000; round++)
            {
                Replies.AddRange(Out.Replies);
                var sends = Out.Sends.ToList();
                Out.Clear();
                if (sends.Count == 0)
                    return;
                foreach (var (to, message) in sends)
                {
                    switch (message)
                    {
                        case RingUpdate u:
                            Manager.OnMessage(NowMs, new RingAck(to, u.Current.Epoch, u.Pending?.Epoch ?? 0));
                            break;
                        case StartTransfers s:
                            foreach (var (index, _) in s.Tasks)
                                Manager.OnMessage(NowMs, new TransferTaskDone(to, s.TransferId, index));
                            break;
                    }
                }
            }
            throw new InvalidOperationException("the manager did not settle in 1000 rounds");
        }

        public NodeId Join(int pid)
        {
            var reply = Assert.IsType<JoinReply>(Assert.Single(Request(new JoinRequest($"sim://{pid}", pid))));
            return reply.Node;
        }
    }

    private static Harness Cluster(int nodes, int n = 3)
    {
        var h = new Harness(new ClusterConfig { ReplicationFactor = n, ReadQuorum = Math.Min(2, n), WriteQuorum = Math.Min(2, n) });
        for (var i = 0; i < nodes; i++)
            h.Join(100 + i);
        return h;
    }

    [Fact]
    public void Manager_hands_out_node_ids_1_2_3_in_join_order()
    {
        // Seed, Centralized Manager: "The manager creates unique ids for each client and storage nodes."
        var h = Cluster(0);
        Assert.Equal(N(1), h.Join(100));
        Assert.Equal(N(2), h.Join(101));
        Assert.Equal(N(3), h.Join(102));
        Assert.Equal(3, h.Manager.Current.NodeCount);
        Assert.Null(h.Manager.Pending);
    }

    [Fact]
    public void Manager_persists_a_snapshot_when_a_node_joins()
    {
        var h = Cluster(0);
        h.Send(new JoinRequest("sim://1", 1));
        Assert.NotNull(h.Out.Persist);
        Assert.Contains(h.Out.Persist!.Members, m => m.Node == N(1));
    }

    [Fact]
    public void Manager_refuses_client_init_with_fewer_than_N_members_naming_both_counts()
    {
        // Seed, Membership: "There must be at least N storage nodes running. Otherwise ... no request
        // will be accepted." DESIGN.md: "with fewer than N member nodes the cluster accepts no request and says why."
        var h = Cluster(2, n: 3);
        var error = Assert.IsType<ErrorReply>(Assert.Single(h.Request(new ClientInitRequest())));
        Assert.Contains("2 of the 3 nodes", error.Message);
        Assert.Contains("replication factor 3", error.Message);
    }

    [Fact]
    public void Manager_refuses_client_init_with_no_nodes()
    {
        var h = Cluster(0, n: 1);
        var error = Assert.IsType<ErrorReply>(Assert.Single(h.Request(new ClientInitRequest())));
        Assert.Contains("0 of the 1 nodes", error.Message);
    }

    [Fact]
    public void Manager_round_robins_forwarders_and_gives_each_client_a_new_id()
    {
        // Seed, Load balancing: "Client gets recommended contact node from manager, which is given by round-robin".
        var h = Cluster(3, n: 3);
        var replies = Enumerable.Range(0, 7)
            .Select(_ => Assert.IsType<ClientInitReply>(Assert.Single(h.Request(new ClientInitRequest()))))
            .ToList();
        Assert.Equal([N(1), N(2), N(3), N(1), N(2), N(3), N(1)], replies.Select(r => r.Forwarder));
        Assert.Equal(7, replies.Select(r => r.ClientId).Distinct().Count());
        Assert.All(replies, r => Assert.Equal($"sim://{99 + r.Forwarder.Value}", r.ForwarderAddress));
    }

    [Fact]
    public void Manager_refuses_a_leave_that_would_leave_fewer_than_N_nodes()
    {
        var h = Cluster(3, n: 3);
        var error = Assert.IsType<ErrorReply>(Assert.Single(h.Request(new AdminLeave(N(2)))));
        Assert.Contains("2 nodes would remain", error.Message);
        Assert.Contains("replication factor 3", error.Message);
        Assert.True(h.Manager.Current.Contains(N(2)));
        Assert.Null(h.Manager.Pending);
    }

    [Fact]
    public void Manager_completes_a_leave_that_keeps_N_nodes_and_answers_when_done()
    {
        // DESIGN.md Membership, Leave: "the leaving node streams its partitions to the new owners,
        // then the manager commits its removal."
        var h = Cluster(4, n: 3);
        var epoch = h.Manager.Current.Epoch;
        var replies = h.Request(new AdminLeave(N(2)));
        Assert.IsType<OkReply>(Assert.Single(replies));
        Assert.False(h.Manager.Current.Contains(N(2)));
        Assert.Equal(3, h.Manager.Current.NodeCount);
        Assert.True(h.Manager.Current.Epoch > epoch);
        Assert.DoesNotContain(h.Manager.Status().Members, m => m.Node == N(2));
    }

    [Fact]
    public void Manager_refuses_leave_of_a_node_that_is_not_a_member()
    {
        var h = Cluster(3, n: 1);
        var error = Assert.IsType<ErrorReply>(Assert.Single(h.Request(new AdminLeave(N(9)))));
        Assert.Contains("server9", error.Message);
    }

    [Fact]
    public void Manager_commits_a_join_only_after_every_transfer_is_done()
    {
        // DESIGN.md Membership, Join: "When every transfer is done the manager commits the new epoch".
        var h = Cluster(3, n: 3);
        var epoch = h.Manager.Current.Epoch;
        h.Out.Clear();
        h.Send(new JoinRequest("sim://4", 4));
        Assert.NotNull(h.Manager.Pending);
        Assert.Equal(epoch, h.Manager.Current.Epoch);
        // Every member and the joiner learn of the pending ring.
        var told = h.Out.Sends.Where(s => s.Message is RingUpdate { Pending: not null }).Select(s => s.To).Order().ToList();
        Assert.Equal([N(1), N(2), N(3), N(4)], told);
        h.Settle();
        Assert.Null(h.Manager.Pending);
        Assert.True(h.Manager.Current.Contains(N(4)));
        Assert.Equal(epoch + 1, h.Manager.Current.Epoch);
    }

    [Fact]
    public void Leave_of_a_node_whose_join_is_still_queued_is_answered()
    {
        // Regression: AdminLeave used to mark a Joining node that was not yet in any ring as
        // Leaving; StartNextChange then skipped it both as a join and as a leave, so the leave was
        // never answered. It is now refused until the node is up. DESIGN.md
        // Request path: "Outcomes are exact: success, a clear failure ... never" a hang.
        var h = Cluster(1, n: 1);
        h.Out.Clear();
        h.Send(new JoinRequest("sim://2", 2));            // node 2: its join is now pending
        Assert.NotNull(h.Manager.Pending);
        var join3 = h.Send(new JoinRequest("sim://3", 3)); // node 3: queued behind node 2
        var node3 = Assert.IsType<JoinReply>(Assert.Single(h.Out.Replies, r => r.Handle == join3).Reply).Node;
        var leave = h.Send(new AdminLeave(node3));
        h.Settle();
        for (var t = 0; t < 5; t++)
        {
            h.NowMs += 10_000;
            h.Manager.Tick(h.NowMs);
            h.Settle();
        }
        Assert.Null(h.Manager.Pending);
        var answer = Assert.Single(h.RepliesTo(leave));
        Assert.True(answer is OkReply or ErrorReply);
        if (answer is OkReply)
            Assert.DoesNotContain(h.Manager.Status().Members, m => m.Node == node3);
    }

    [Fact]
    public void Manager_refuses_requests_it_does_not_serve()
    {
        var h = Cluster(0);
        var error = Assert.IsType<ErrorReply>(Assert.Single(h.Request(new ClientRequest(ClientOp.Get, [1], null))));
        Assert.Contains("ClientRequest", error.Message);
    }

    [Fact]
    public void Purge_floor_is_the_oldest_reported_hint_and_zero_while_a_member_is_unknown_or_down()
    {
        // docs/ARCHITECTURE.md Tombstones: a tombstone is purged only when older than every hint
        // held in the cluster; a member whose hints are unknown (not reported, down) forbids it.
        var h = Cluster(3);
        h.Manager.OnMessage(h.NowMs, new Heartbeat(N(1), 500));
        h.Manager.OnMessage(h.NowMs, new Heartbeat(N(2), 400));
        Assert.Equal(0, h.Manager.PurgeFloor());
        h.Out.Clear();
        h.Manager.OnMessage(h.NowMs, new Heartbeat(N(3), 900));
        Assert.Equal(400, h.Manager.PurgeFloor());
        Assert.Contains(h.Out.Sends, s => s.To == N(3) && s.Message is PurgeFloor { Floor: 400, Epoch: 3 });
        h.NowMs += h.Manager.Config.FailureTimeoutMs + 1;
        h.Manager.OnMessage(h.NowMs, new Heartbeat(N(1), 500));
        h.Manager.OnMessage(h.NowMs, new Heartbeat(N(2), 500));
        h.Manager.Tick(h.NowMs);
        Assert.Equal(0, h.Manager.PurgeFloor()); // server3 is down.
        h.Manager.OnMessage(h.NowMs, new Heartbeat(N(3), 700));
        Assert.Equal(500, h.Manager.PurgeFloor());
    }

    [Fact]
    public void Purge_floor_is_zero_while_a_membership_change_is_pending()
    {
        var h = Cluster(3);
        for (var i = 1; i <= 3; i++)
            h.Manager.OnMessage(h.NowMs, new Heartbeat(N(i), 500));
        Assert.Equal(500, h.Manager.PurgeFloor());
        h.Send(new JoinRequest("sim://200", 200));
        Assert.NotNull(h.Manager.Pending);
        Assert.Equal(0, h.Manager.PurgeFloor());
    }
}
