using System.Text;
using GTStore.Core.Messages;
using static GTStore.Core.Tests.TestRings;

namespace GTStore.Core.Tests;

/// <summary>
/// Tombstone purge rounds on node machines wired by hand. DESIGN.md "Versions, deletes, limits":
/// "Delete writes a tombstone version; tombstones are purged only after every replica has them."
/// A purge must never bring a deleted value back and never remove a newer write.
/// </summary>
public sealed class PurgeTests
{
    private const int GraceMs = 6_000;
    private static readonly ClusterConfig Config = new() { ReplicationFactor = 3, ReadQuorum = 2, WriteQuorum = 2, TombstoneGraceMs = GraceMs };
    private static readonly byte[] Key = Encoding.UTF8.GetBytes("deleted-key");
    private static readonly ulong Hash = KeyHash.Of(Key);

    private sealed class Cluster
    {
        public Cluster(bool bucketSummaries = false)
        {
            Ring = Grown(5, 3);
            Nodes = HandWired.Nodes(Ring, Config, bucketSummaries);
            Replicas = Ring.PreferenceList(Hash, 3);
        }

        public Ring Ring { get; }
        public NodeId[] Replicas { get; }
        public NodeId Proposer => Replicas[0];
        public Dictionary<NodeId, (NodeMachine Node, Outbox Out, FakeStore Store)> Nodes { get; }
        public long NowMs { get; set; }

        /// <summary>The manager's answer to heartbeats; 0 forbids purging.</summary>
        public long Floor { get; set; } = long.MaxValue;

        public FakeStore Store(NodeId id) => Nodes[id].Store;

        /// <summary>Delivers queued purge messages (anti-entropy and the rest are dropped, so a round is seen alone).</summary>
        public void Run(Func<NodeId, Message, bool>? before = null)
        {
            for (var i = 0; i < 100; i++)
            {
                var sends = Nodes.SelectMany(kv => kv.Value.Out.Sends.Select(s => (s.To, s.Message))).ToList();
                foreach (var n in Nodes.Values)
                    n.Out.Clear();
                var purgeSends = sends.Where(s => s.Message is PurgeProposal or PurgeConfirm or PurgeCommit).ToList();
                if (purgeSends.Count == 0)
                    return;
                foreach (var (to, message) in purgeSends)
                {
                    if (before?.Invoke(to, message) != false)
                        Nodes[to].Node.OnMessage(NowMs, message);
                }
            }
        }

        /// <summary>Several purge intervals pass, each with a fresh floor from the manager.</summary>
        public void Rounds(int count = 12, Func<NodeId, Message, bool>? before = null)
        {
            for (var r = 0; r < count; r++)
            {
                NowMs += 1_000;
                foreach (var (_, n) in Nodes)
                {
                    n.Node.OnMessage(NowMs, new PurgeFloor(Ring.Epoch, Floor));
                    n.Node.Tick(NowMs);
                }
                Run(before);
            }
        }

        public long PurgedTotal => Nodes.Values.Sum(n => n.Node.TombstonesPurged);
    }

    private static VersionedValue Tombstone(long physicalMs) => new(new Version(HybridClock.AtPhysicalMs(physicalMs), 1), null);

    private static Cluster WithTombstoneOnAllReplicas(long physicalMs, long startMs, bool bucketSummaries = false)
    {
        var c = new Cluster(bucketSummaries) { NowMs = startMs };
        foreach (var r in c.Replicas)
            c.Store(r).Put(Hash, Key, Tombstone(physicalMs));
        return c;
    }

    [Fact]
    public void A_tombstone_every_replica_holds_older_than_the_grace_is_purged_everywhere()
    {
        var c = WithTombstoneOnAllReplicas(physicalMs: 1_000, startMs: 1_000 + GraceMs);
        c.Rounds();
        foreach (var r in c.Replicas)
            Assert.Null(c.Store(r).Get(Hash, Key));
        Assert.Equal(3, c.PurgedTotal);
        Assert.Equal(1, c.Nodes[c.Proposer].Node.Stats().TombstonesPurged);
    }

    /// <summary>
    /// Live keys in the middle of every slice of the key's range but the key's own, on every
    /// replica: buckets that anti-entropy, reading only the buckets cut by slice bounds, never reads.
    /// </summary>
    private static List<ulong> LiveInSliceMiddles(Cluster c)
    {
        var range = c.Ring.Partitions(3).Single(p => p.Range.Contains(Hash)).Range;
        var live = new List<ulong>();
        for (var slice = 0; slice < AntiEntropy.Leaves; slice++)
        {
            if (AntiEntropy.SliceRange(range, slice) is not { } part || part.Contains(Hash))
                continue;
            var middle = unchecked(part.Start + (ulong)(part.Width / 2));
            live.Add(middle);
            foreach (var r in c.Replicas)
                c.Store(r).Put(middle, [1], new VersionedValue(new Version(HybridClock.AtPhysicalMs(500), 1), [2]));
        }
        Assert.NotEmpty(live);
        return live;
    }

    [Fact]
    public void With_tombstones_counted_per_bucket_a_purge_reads_only_the_buckets_that_hold_one()
    {
        // IStorageEngine.BucketTombstones: "so that a tombstone purge reads only the buckets that hold some".
        var c = WithTombstoneOnAllReplicas(physicalMs: 1_000, startMs: 1_000 + GraceMs, bucketSummaries: true);
        var live = LiveInSliceMiddles(c);
        c.Rounds();
        Assert.All(c.Replicas, r => Assert.Null(c.Store(r).Get(Hash, Key)));
        Assert.Equal(3, c.PurgedTotal);
        Assert.All(c.Replicas, r => Assert.DoesNotContain(c.Store(r).Scanned, e => live.Contains(e.Hash)));
    }

    [Fact]
    public void With_no_tombstones_held_a_purge_round_reads_nothing()
    {
        var c = new Cluster(bucketSummaries: true) { NowMs = 1_000 + GraceMs };
        var live = LiveInSliceMiddles(c);
        c.Rounds();
        Assert.All(c.Replicas, r => Assert.DoesNotContain(c.Store(r).Scanned, e => live.Contains(e.Hash)));
    }

    [Fact]
    public void A_tombstone_one_replica_lacks_is_not_purged()
    {
        var c = WithTombstoneOnAllReplicas(physicalMs: 1_000, startMs: 1_000 + GraceMs);
        c.Store(c.Replicas[2]).DropRange(new HashRange(unchecked(Hash - 1), Hash));
        c.Rounds();
        Assert.NotNull(c.Store(c.Replicas[0]).Get(Hash, Key));
        Assert.NotNull(c.Store(c.Replicas[1]).Get(Hash, Key));
        Assert.Equal(0, c.PurgedTotal);
    }

    [Fact]
    public void A_replica_holding_an_older_live_version_blocks_the_purge()
    {
        var c = WithTombstoneOnAllReplicas(physicalMs: 1_000, startMs: 1_000 + GraceMs);
        var lagging = c.Replicas[1];
        c.Store(lagging).DropRange(new HashRange(unchecked(Hash - 1), Hash));
        c.Store(lagging).Put(Hash, Key, new VersionedValue(new Version(HybridClock.AtPhysicalMs(500), 2), [1]));
        c.Rounds();
        Assert.True(c.Store(c.Proposer).Get(Hash, Key)!.Value.IsTombstone);
        Assert.Equal(0, c.PurgedTotal);
    }

    [Fact]
    public void A_tombstone_younger_than_the_grace_is_not_purged()
    {
        // The rounds run from 2 s to 14 s; the tombstone of 9 s is never older than 6 s then.
        var c = WithTombstoneOnAllReplicas(physicalMs: 9_000, startMs: 2_000);
        c.Rounds(count: 12);
        Assert.All(c.Replicas, r => Assert.NotNull(c.Store(r).Get(Hash, Key)));
        Assert.Equal(0, c.PurgedTotal);
        c.Rounds(count: 4); // Now older than the grace.
        Assert.All(c.Replicas, r => Assert.Null(c.Store(r).Get(Hash, Key)));
    }

    [Fact]
    public void A_hint_older_than_the_tombstone_anywhere_in_the_cluster_blocks_the_purge()
    {
        // The manager's floor is the oldest hint any node holds: here one older than the tombstone.
        var c = WithTombstoneOnAllReplicas(physicalMs: 1_000, startMs: 1_000 + GraceMs);
        c.Floor = HybridClock.AtPhysicalMs(900);
        c.Rounds();
        Assert.All(c.Replicas, r => Assert.NotNull(c.Store(r).Get(Hash, Key)));
        c.Floor = 0; // A node down: nothing may be purged.
        c.Rounds();
        Assert.Equal(0, c.PurgedTotal);
        c.Floor = HybridClock.AtPhysicalMs(1_001);
        c.Rounds();
        Assert.All(c.Replicas, r => Assert.Null(c.Store(r).Get(Hash, Key)));
    }

    [Fact]
    public void Without_a_fresh_floor_from_the_manager_nothing_is_purged()
    {
        var c = WithTombstoneOnAllReplicas(physicalMs: 1_000, startMs: 1_000 + GraceMs);
        for (var r = 0; r < 12; r++)
        {
            c.NowMs += 1_000;
            foreach (var (_, n) in c.Nodes)
                n.Node.Tick(c.NowMs);
            c.Run();
        }
        Assert.Equal(0, c.PurgedTotal);
    }

    [Fact]
    public void A_write_newer_than_the_tombstone_arriving_before_the_commit_survives_it()
    {
        var c = WithTombstoneOnAllReplicas(physicalMs: 1_000, startMs: 1_000 + GraceMs);
        var newer = new VersionedValue(new Version(HybridClock.AtPhysicalMs(7_500), 3), [7]);
        var target = c.Replicas[2];
        c.Rounds(before: (to, m) =>
        {
            if (m is PurgeCommit && to == target)
                c.Nodes[target].Node.OnMessage(c.NowMs, new ReplicaWrite(0, c.Replicas[1], Key, newer));
            return true;
        });
        Assert.Equal(newer, c.Store(target).Get(Hash, Key));
        Assert.Null(c.Store(c.Replicas[0]).Get(Hash, Key));
        Assert.Null(c.Store(c.Replicas[1]).Get(Hash, Key));
    }

    [Fact]
    public void A_newer_write_at_the_proposer_while_replicas_confirm_survives_the_commit()
    {
        var c = WithTombstoneOnAllReplicas(physicalMs: 1_000, startMs: 1_000 + GraceMs);
        var newer = new VersionedValue(new Version(HybridClock.AtPhysicalMs(7_500), 3), [7]);
        c.Rounds(before: (to, m) =>
        {
            if (m is PurgeConfirm && to == c.Proposer)
                c.Store(c.Proposer).Put(Hash, Key, newer);
            return true;
        });
        Assert.Equal(newer, c.Store(c.Proposer).Get(Hash, Key));
    }

    [Fact]
    public void A_late_message_with_the_deleted_value_after_the_purge_does_not_bring_it_back()
    {
        var c = WithTombstoneOnAllReplicas(physicalMs: 1_000, startMs: 1_000 + GraceMs);
        for (var r = 0; r < 12 && c.PurgedTotal == 0; r++)
            c.Rounds(count: 1);
        Assert.All(c.Replicas, r => Assert.Null(c.Store(r).Get(Hash, Key)));
        // Within the grace after the purge: a delayed repair or handoff of an older version.
        var old = new VersionedValue(new Version(HybridClock.AtPhysicalMs(500), 2), [1]);
        var node = c.Nodes[c.Replicas[1]].Node;
        node.OnMessage(c.NowMs, new ReplicaWrite(0, c.Replicas[2], Key, old));
        node.OnMessage(c.NowMs, new ReplicaWrite(5, c.Replicas[2], Key, old));
        Assert.Null(c.Store(c.Replicas[1]).Get(Hash, Key));
        // The handoff of a stale write is acknowledged (it is superseded), so the stand-in lets it go.
        Assert.Contains(c.Nodes[c.Replicas[1]].Out.Sends, s => s.Message is ReplicaWriteAck { OpId: 5, Ok: true });
        // Past the grace the key is forgotten; a new write (any version) is stored as usual.
        c.NowMs += GraceMs + 1;
        node.Tick(c.NowMs);
        node.OnMessage(c.NowMs, new ReplicaWrite(0, c.Replicas[2], Key, old));
        Assert.Equal(old, c.Store(c.Replicas[1]).Get(Hash, Key));
    }

    [Fact]
    public void A_read_repair_from_a_node_outside_the_ring_is_ignored()
    {
        var c = new Cluster { NowMs = 10_000 };
        var stale = new VersionedValue(new Version(HybridClock.AtPhysicalMs(500), 9), [1]);
        c.Nodes[c.Replicas[0]].Node.OnMessage(c.NowMs, new ReplicaWrite(0, N(9), Key, stale));
        Assert.Null(c.Store(c.Replicas[0]).Get(Hash, Key));
    }
}
