using CsCheck;
using static GTStore.Core.Tests.TestRings;

namespace GTStore.Core.Tests;

/// <summary>
/// Seed, Consistency: "A read task is completed if at least R nodes send results back" and "A write
/// task is completed if at least W nodes send results back". DESIGN.md Request path: "Late answers
/// after the quorum are ignored for the reply (the seed) but still used for repair." DESIGN.md
/// Membership: "During transfer the affected ranges are pending: writes go to old and new owners both".
/// </summary>
public sealed class QuorumTests
{
    private static VersionedValue V(long ts, int node, byte value) => new(new Version(ts, node), [value]);

    [Fact]
    public void Write_quorum_is_reached_at_W_acknowledgements()
    {
        var q = new WriteQuorum([N(1), N(2), N(3)], null, 2);
        Assert.Equal(QuorumState.Waiting, q.State);
        Assert.Equal(QuorumState.Waiting, q.Ack(N(1)));
        Assert.Equal(QuorumState.Reached, q.Ack(N(3)));
        Assert.Equal(2, q.AckCount);
    }

    [Fact]
    public void Write_quorum_counts_a_replica_once_however_often_it_acknowledges()
    {
        var q = new WriteQuorum([N(1), N(2), N(3)], null, 2);
        q.Ack(N(1));
        Assert.Equal(QuorumState.Waiting, q.Ack(N(1)));
    }

    [Fact]
    public void Write_quorum_ignores_acknowledgements_from_non_replicas()
    {
        var q = new WriteQuorum([N(1), N(2), N(3)], null, 2);
        q.Ack(N(1));
        Assert.Equal(QuorumState.Waiting, q.Ack(N(9)));
    }

    [Fact]
    public void Write_quorum_is_impossible_once_too_many_replicas_failed()
    {
        var q = new WriteQuorum([N(1), N(2), N(3)], null, 2);
        Assert.Equal(QuorumState.Waiting, q.Fail(N(1)));
        Assert.Equal(QuorumState.Impossible, q.Fail(N(2)));
        Assert.Contains("write quorum 2", q.Describe());
    }

    [Fact]
    public void Write_quorum_with_one_failure_and_W_acks_is_reached()
    {
        var q = new WriteQuorum([N(1), N(2), N(3)], null, 2);
        q.Fail(N(2));
        q.Ack(N(1));
        Assert.Equal(QuorumState.Reached, q.Ack(N(3)));
    }

    [Fact]
    public void Write_quorum_with_a_pending_ring_needs_W_of_each_ring()
    {
        // Current replicas 1,2,3; pending replicas 2,3,4 (node 4 joining, node 1 dropping out).
        var q = new WriteQuorum([N(1), N(2), N(3)], [N(2), N(3), N(4)], 2);
        Assert.Equal([N(1), N(2), N(3), N(4)], q.Targets.Order());
        Assert.Equal(4, q.TargetCount);
        q.Ack(N(1));
        q.Ack(N(4));
        // One of each ring: neither has two.
        Assert.Equal(QuorumState.Waiting, q.State);
        Assert.Equal(QuorumState.Reached, q.Ack(N(2)));
    }

    [Fact]
    public void Write_quorum_with_a_pending_ring_is_not_reached_by_the_current_ring_alone()
    {
        var q = new WriteQuorum([N(1), N(2), N(3)], [N(3), N(4), N(5)], 2);
        q.Ack(N(1));
        q.Ack(N(2));
        Assert.Equal(QuorumState.Waiting, q.State);
        q.Ack(N(3));
        Assert.Equal(QuorumState.Waiting, q.State);
        Assert.Equal(QuorumState.Reached, q.Ack(N(5)));
    }

    [Fact]
    public void Write_quorum_with_a_pending_ring_is_impossible_when_the_pending_ring_cannot_reach_W()
    {
        var q = new WriteQuorum([N(1), N(2), N(3)], [N(3), N(4), N(5)], 2);
        q.Ack(N(1));
        q.Ack(N(2));
        q.Fail(N(4));
        Assert.Equal(QuorumState.Impossible, q.Fail(N(5)));
    }

    [Fact]
    public void Write_quorum_with_fewer_replicas_than_W_needs_every_replica()
    {
        var q = new WriteQuorum([N(1)], null, 2);
        Assert.Equal(QuorumState.Reached, q.Ack(N(1)));
    }

    [Fact]
    public void Write_quorum_state_follows_the_first_answer_of_each_node_in_each_ring()
    {
        // The reference: a node's first answer counts; the write needs min(W, replicas) acks in
        // each ring, and is impossible once too many of a ring's replicas failed.
        var genRing = Gen.Int[1, 6].Array[1, 3].Select(ids => ids.Distinct().Select(N).ToArray());
        var genAnswers = Gen.Select(Gen.Int[1, 7], Gen.Bool).Array[0, 12];
        Gen.Select(genRing, Gen.Bool, genRing, Gen.Int[1, 3], genAnswers).Sample((current, hasPending, pending, w, answers) =>
        {
            var q = new WriteQuorum(current, hasPending ? pending : null, w);
            var first = new Dictionary<NodeId, bool>();
            foreach (var (id, ok) in answers)
            {
                var node = N(id);
                first.TryAdd(node, ok);
                var state = ok ? q.Ack(node) : q.Fail(node);
                Assert.Equal(Reference(current, hasPending ? pending : null, w, first), state);
                Assert.True(q.HasAnswered(node));
            }
            Assert.Equal(first.Count(kv => kv.Value), q.AckCount);
        }, iter: 3000);

        static QuorumState Reference(NodeId[] current, NodeId[]? pending, int w, Dictionary<NodeId, bool> first)
        {
            QuorumState Ring(NodeId[] replicas)
            {
                var need = Math.Min(w, replicas.Length);
                var acks = replicas.Count(r => first.TryGetValue(r, out var ok) && ok);
                var failed = replicas.Count(r => first.TryGetValue(r, out var ok) && !ok);
                return acks >= need ? QuorumState.Reached : replicas.Length - failed < need ? QuorumState.Impossible : QuorumState.Waiting;
            }
            var a = Ring(current);
            var b = pending is null ? QuorumState.Reached : Ring(pending);
            if (a == QuorumState.Impossible || b == QuorumState.Impossible)
                return QuorumState.Impossible;
            return a == QuorumState.Reached && b == QuorumState.Reached ? QuorumState.Reached : QuorumState.Waiting;
        }
    }

    [Fact]
    public void A_failure_after_an_ack_does_not_take_the_ack_back()
    {
        var q = new WriteQuorum([N(1), N(2), N(3)], null, 2);
        q.Ack(N(1));
        q.Fail(N(1));
        Assert.Equal(QuorumState.Reached, q.Ack(N(2)));
    }

    [Fact]
    public void Read_quorum_is_reached_at_R_answers_and_returns_the_latest_version()
    {
        var q = new ReadQuorum([N(1), N(2), N(3)], 2);
        Assert.Equal(QuorumState.Waiting, q.Answer(N(1), V(5, 1, 0xA)));
        Assert.Equal(QuorumState.Reached, q.Answer(N(2), V(7, 2, 0xB)));
        Assert.Equal(new Version(7, 2), q.Latest()!.Value.Version);
        Assert.Equal(new byte[] { 0xB }, q.Latest()!.Value.Value!);
    }

    [Fact]
    public void Read_quorum_counts_not_found_toward_R_only_once_every_replica_answered()
    {
        // After a sloppy write, two replicas may hold nothing yet while the third holds the value.
        var q = new ReadQuorum([N(1), N(2), N(3)], 2);
        q.Answer(N(1), null);
        Assert.Equal(QuorumState.Waiting, q.Answer(N(2), null));
        Assert.Equal(QuorumState.Reached, q.Answer(N(3), V(4, 3, 1)));
        Assert.Equal(new Version(4, 3), q.Latest()!.Value.Version);
        Assert.Equal([N(1), N(2)], q.Stale().Order());

        var missing = new ReadQuorum([N(1), N(2), N(3)], 2);
        missing.Answer(N(1), null);
        missing.Fail(N(2));
        Assert.Equal(QuorumState.Reached, missing.Answer(N(3), null));
        Assert.Null(missing.Latest());
        Assert.Empty(missing.Stale());

        var found = new ReadQuorum([N(1), N(2), N(3)], 2);
        found.Answer(N(1), null);
        Assert.Equal(QuorumState.Reached, found.Answer(N(2), new VersionedValue(new Version(9, 2), null))); // a tombstone is an answer
    }

    [Fact]
    public void Read_quorum_is_impossible_once_too_many_replicas_failed()
    {
        var q = new ReadQuorum([N(1), N(2), N(3)], 2);
        q.Answer(N(1), V(1, 1, 1));
        q.Fail(N(2));
        Assert.Equal(QuorumState.Impossible, q.Fail(N(3)));
        Assert.True(q.AllAnswered);
    }

    [Fact]
    public void Read_quorum_stale_lists_replicas_with_older_or_missing_versions()
    {
        var q = new ReadQuorum([N(1), N(2), N(3)], 3);
        q.Answer(N(1), V(5, 1, 1));
        q.Answer(N(2), V(9, 1, 2));
        q.Answer(N(3), null);
        Assert.Equal(QuorumState.Reached, q.State);
        Assert.Equal([N(1), N(3)], q.Stale().Order());
    }

    [Fact]
    public void Read_quorum_stale_lists_a_tombstone_holder_as_current_when_the_tombstone_is_latest()
    {
        var q = new ReadQuorum([N(1), N(2)], 2);
        q.Answer(N(1), new VersionedValue(new Version(9, 1), null));
        q.Answer(N(2), V(5, 1, 1));
        Assert.True(q.Latest()!.Value.IsTombstone);
        Assert.Equal([N(2)], q.Stale());
    }

    [Fact]
    public void A_late_read_answer_after_the_quorum_still_counts_for_read_repair()
    {
        var q = new ReadQuorum([N(1), N(2), N(3)], 2);
        q.Answer(N(1), V(5, 1, 1));
        Assert.Equal(QuorumState.Reached, q.Answer(N(2), V(5, 1, 1)));
        Assert.Empty(q.Stale());
        Assert.False(q.AllAnswered);
        // Node 3 answers late with an older version: it must be repaired.
        q.Answer(N(3), V(2, 1, 0));
        Assert.True(q.AllAnswered);
        Assert.Equal([N(3)], q.Stale());
        // And a late newer answer changes the latest, so the early answers become stale.
        var q2 = new ReadQuorum([N(1), N(2), N(3)], 2);
        q2.Answer(N(1), V(5, 1, 1));
        q2.Answer(N(2), V(5, 1, 1));
        q2.Answer(N(3), V(8, 3, 2));
        Assert.Equal(new Version(8, 3), q2.Latest()!.Value.Version);
        Assert.Equal([N(1), N(2)], q2.Stale().Order());
    }

    [Fact]
    public void Read_quorum_ignores_answers_from_non_replicas()
    {
        var q = new ReadQuorum([N(1), N(2), N(3)], 2);
        q.Answer(N(1), V(1, 1, 1));
        Assert.Equal(QuorumState.Waiting, q.Answer(N(7), V(99, 7, 1)));
        Assert.Equal(new Version(1, 1), q.Latest()!.Value.Version);
    }

    [Fact]
    public void Read_quorum_follows_a_model_of_each_replica_s_last_answer()
    {
        // The reference: a map from replica to its last answer (a failure only for a replica that
        // never answered, an answer only for one that never failed), from which state, latest
        // version, staleness and counts follow. Versions come from a small range, so ties and
        // replacements happen; a value may be missing (not found) or a tombstone.
        var genRing = Gen.Int[1, 6].Array[1, 4].Select(ids => ids.Distinct().Select(N).ToArray());
        var genValue = Gen.Select(Gen.Int[0, 3], Gen.Int[1, 3], Gen.Int[0, 2]).Select<int, int, int, VersionedValue?>((ts, node, kind) =>
            kind == 0 ? null : new VersionedValue(new Version(ts, node), kind == 1 ? null : [(byte)(ts * 4 + node)]));
        var genOps = Gen.Select(Gen.Int[1, 7], Gen.Bool, genValue).Array[0, 12];
        Gen.Select(genRing, Gen.Int[1, 4], genOps).Sample((replicas, r, ops) =>
        {
            var q = new ReadQuorum(replicas, r);
            var answers = new Dictionary<NodeId, VersionedValue?>();
            var failed = new HashSet<NodeId>();
            foreach (var (id, fail, value) in ops)
            {
                var node = N(id);
                var isReplica = replicas.Contains(node);
                var state = fail ? q.Fail(node) : q.Answer(node, value);
                if (isReplica && fail && !answers.ContainsKey(node))
                    failed.Add(node);
                if (isReplica && !fail && !failed.Contains(node))
                    answers[node] = value;

                var required = Math.Min(r, replicas.Length);
                var all = answers.Count + failed.Count >= replicas.Length;
                var held = answers.Values.Where(v => v is not null).Select(v => v!.Value).ToList();
                var expected = answers.Count >= required && (held.Count > 0 || all) ? QuorumState.Reached
                    : replicas.Length - failed.Count < required ? QuorumState.Impossible
                    : QuorumState.Waiting;
                Assert.Equal(expected, state);
                Assert.Equal(all, q.AllAnswered);
                Assert.Equal(answers.ContainsKey(node) || failed.Contains(node), q.HasAnswered(node));
                var latest = held.Count == 0 ? (Version?)null : held.Max(v => v.Version);
                Assert.Equal(latest, q.Latest()?.Version);
                var stale = latest is { } l ? answers.Where(kv => kv.Value is not { } v || v.Version < l).Select(kv => kv.Key).Order().ToArray() : [];
                Assert.Equal(stale, q.Stale().Order().ToArray());
                Assert.Equal($"{answers.Count} of {replicas.Length} replicas answered, read quorum {required}", q.Describe());
            }
        }, iter: 3000);
    }

    [Fact]
    public void Read_quorum_describe_names_answers_replicas_and_R()
    {
        var q = new ReadQuorum([N(1), N(2), N(3)], 2);
        q.Answer(N(1), null);
        Assert.Equal("1 of 3 replicas answered, read quorum 2", q.Describe());
    }
}
