using System.Collections.Immutable;
using CsCheck;
using static GTStore.Core.Tests.TestRings;

namespace GTStore.Core.Tests;

/// <summary>
/// DESIGN.md Membership: "plans transfers by walking the old and new rings together (the seed's
/// two-pointer pass)" and the invariant "each key is on exactly the N nodes of its preference list".
/// Seed, Membership: "The manager determines Which the old nodes should donate some data to the new
/// nodes." Dynamo 4.9: nodes "transfer ... the appropriate set of keys", and only those.
///
/// The model: each node's data is the set of key hashes it holds, over a fixed sample of hashes plus
/// every token boundary (b - 1, b, b + 1). A change copies per the plan, then drops what each node no
/// longer replicates. Failures print a CsCheck seed; replay with CsCheck_Seed=... .
/// </summary>
public sealed class TransferPlannerTests
{
    private static readonly ulong[] SampleHashes =
        [.. Enumerable.Range(0, 2000).Select(i => KeyHash.Of(System.Text.Encoding.UTF8.GetBytes($"key-{i}")))];

    private sealed record Change(bool Join, int Pick);

    [Fact]
    public void Over_random_joins_and_leaves_every_key_ends_on_exactly_its_N_new_replicas_and_only_what_must_move_moves()
    {
        var gen = Gen.Select(Gen.Int[1, 4], Gen.Int[1, 3], Gen.Int[1, 4],
            Gen.Select(Gen.Bool, Gen.Int[0, 1000], (join, pick) => new Change(join, pick)).Array[1, 10]);
        gen.Sample((start, n, v, changes) =>
        {
            var rings = new List<Ring> { Grown(start, v) };
            var nextId = start + 1;
            foreach (var c in changes)
            {
                var ring = rings[^1];
                if (!c.Join && ring.NodeCount - 1 >= n && ring.NodeCount > 1)
                {
                    var leaving = ring.Members.Keys.ElementAt(c.Pick % ring.NodeCount);
                    rings.Add(TokenAllocator.Leave(ring, leaving, ring.Epoch + 1));
                }
                else
                {
                    rings.Add(TokenAllocator.Join(ring, N(nextId), $"sim://{nextId}", v, ring.Epoch + 1));
                    nextId++;
                }
            }
            var keys = KeysFor(rings);
            var data = Place(rings[0], n, keys);
            for (var k = 1; k < rings.Count; k++)
            {
                var (old, next) = (rings[k - 1], rings[k]);
                // As the manager does: the leaving node, if any, donates its own data.
                var leaving = old.Members.Keys.FirstOrDefault(id => !next.Contains(id), NodeId.None);
                var tasks = TransferPlanner.Plan(old, next, n, leaving);
                data = ApplyAndCheck(old, next, n, tasks, keys, data, leaving);
            }
        }, iter: 100);
    }

    [Fact]
    public void Over_arbitrary_ring_pairs_the_plan_brings_every_key_to_its_new_replicas()
    {
        // Any old ring to any new ring (as re-replication after a crash needs), with tokens crowded
        // near 0 and near the top so that adjacent and wrapping boundaries are common.
        var genPosition = Gen.OneOf(Gen.ULong[0, 40], Gen.ULong[ulong.MaxValue - 40, ulong.MaxValue], Gen.ULong);
        var genRing = Gen.Select(genPosition, Gen.Int[1, 6]).Array[1, 14];
        Gen.Select(genRing, genRing, Gen.Int[1, 4]).Sample((a, b, n) =>
        {
            var old = RingOf(a);
            var next = RingOf(b);
            var keys = KeysFor([old, next]);
            var tasks = TransferPlanner.Plan(old, next, n);
            ApplyAndCheck(old, next, n, tasks, keys, Place(old, n, keys), NodeId.None);
        }, iter: 300);
    }

    [Fact]
    public void Plan_between_identical_rings_is_empty()
    {
        var ring = Grown(5, 3);
        Assert.Empty(TransferPlanner.Plan(ring, ring, 3));
    }

    [Fact]
    public void Plan_from_or_to_an_empty_ring_is_empty()
    {
        Assert.Empty(TransferPlanner.Plan(Ring.Empty, Grown(1, 3), 3));
        Assert.Empty(TransferPlanner.Plan(Grown(1, 3), Ring.Empty, 3));
    }

    [Fact]
    public void Fourth_node_joining_three_with_N_3_receives_exactly_the_ranges_whose_preference_list_now_includes_it()
    {
        // With 3 nodes and N = 3 every node holds everything, so only the newcomer can gain data, and
        // it must gain exactly the new ring's partitions that list it.
        var old = Grown(3, 3);
        var next = TokenAllocator.Join(old, N(4), "sim://4", 3, old.Epoch + 1);
        var tasks = TransferPlanner.Plan(old, next, 3);

        Assert.NotEmpty(tasks);
        Assert.All(tasks, t => Assert.Equal(N(4), t.Destination));
        Assert.All(tasks, t => Assert.True(old.Contains(t.Source)));
        var positions = next.Tokens.Select(t => t.Position).ToHashSet();
        Assert.All(tasks, t => Assert.True(positions.Contains(t.Range.Start) && positions.Contains(t.Range.End),
            $"task {t.Range} does not lie on partition boundaries of the new ring"));

        UInt128 expected = 0;
        for (var i = 0; i < next.Tokens.Length; i++)
        {
            var range = next.RangeAt(i);
            var listed = next.PreferenceListFrom(i, 3).Contains(N(4));
            // Every old replica streams each gained partition (no single copy is trusted to be complete).
            var planned = tasks.Count(t => t.Range.Contains(range.End));
            var oldReplicas = old.PreferenceList(range.End, 3).Length;
            Assert.True(planned == (listed ? oldReplicas : 0), $"partition {range}: listed {listed}, planned {planned} times");
            if (listed)
                expected += range.Width;
        }
        Assert.Equal(expected, tasks.DistinctBy(t => t.Range).Aggregate((UInt128)0, (sum, t) => sum + t.Range.Width));
    }

    [Fact]
    public void Leaving_node_donates_every_range_it_held()
    {
        // DESIGN.md Membership, Leave: "the leaving node streams its partitions to the new owners".
        var old = Grown(5, 3);
        var next = TokenAllocator.Leave(old, N(2), old.Epoch + 1);
        var tasks = TransferPlanner.Plan(old, next, 3, N(2));
        Assert.NotEmpty(tasks);
        Assert.All(tasks, t => Assert.NotEqual(N(2), t.Destination));
        // Every moved range the leaving node held is streamed by it (besides the other old replicas).
        Assert.All(tasks.Where(t => old.PreferenceList(t.Range.End, 3).Contains(N(2))),
            t => Assert.Contains(tasks, d => d.Source == N(2) && d.Destination == t.Destination && d.Range.Contains(t.Range.End)));
    }

    [Fact]
    public void Joining_node_into_a_one_node_ring_with_N_2_gets_the_whole_ring()
    {
        var old = Grown(1, 3);
        var next = TokenAllocator.Join(old, N(2), "sim://2", 3, 2);
        var tasks = TransferPlanner.Plan(old, next, 2);
        Assert.All(tasks, t => Assert.Equal((N(1), N(2)), (t.Source, t.Destination)));
        Assert.Equal((UInt128)1 << 64, tasks.Aggregate((UInt128)0, (sum, t) => sum + t.Range.Width));
    }

    // ---- model ----------------------------------------------------------------------------------

    private static Ring RingOf((ulong Position, int Owner)[] tokens)
    {
        var distinct = tokens.DistinctBy(t => t.Position).OrderBy(t => t.Position).ToArray();
        return Build(1, distinct);
    }

    private static ulong[] KeysFor(IEnumerable<Ring> rings)
    {
        var keys = new HashSet<ulong>(SampleHashes) { 0, 1, ulong.MaxValue, ulong.MaxValue - 1 };
        foreach (var ring in rings)
        {
            foreach (var t in ring.Tokens)
            {
                keys.Add(unchecked(t.Position - 1));
                keys.Add(t.Position);
                keys.Add(unchecked(t.Position + 1));
            }
        }
        return [.. keys];
    }

    private static Dictionary<NodeId, HashSet<ulong>> Place(Ring ring, int n, ulong[] keys)
    {
        var data = ring.Members.Keys.ToDictionary(id => id, _ => new HashSet<ulong>());
        foreach (var key in keys)
        {
            foreach (var node in ring.PreferenceList(key, n))
                data[node].Add(key);
        }
        return data;
    }

    private static Dictionary<NodeId, HashSet<ulong>> ApplyAndCheck(
        Ring old, Ring next, int n, List<TransferTask> tasks, ulong[] keys,
        Dictionary<NodeId, HashSet<ulong>> data, NodeId leaving)
    {
        var context = $"{old} -> {next}, N={n}, {tasks.Count} tasks";
        var after = next.Members.Keys.ToDictionary(id => id, id => data.TryGetValue(id, out var held) ? new HashSet<ulong>(held) : []);
        var delivered = new HashSet<(NodeId, ulong, NodeId)>();
        foreach (var task in tasks)
        {
            var what = $"{context}: task {task.Range} {task.Source}->{task.Destination}";
            Assert.True(task.Source != task.Destination, $"{what}: source is its own destination");
            Assert.True(old.Contains(task.Source), $"{what}: source is not in the old ring");
            Assert.True(next.Contains(task.Destination), $"{what}: destination is not in the new ring");
            // The range is not empty of work: its first and last hash are ones the destination must gain.
            foreach (var probe in new[] { unchecked(task.Range.Start + 1), task.Range.End })
                CheckGain(old, next, n, task, probe, what);
            if (leaving.IsNode && old.IsReplica(leaving, task.Range.End, n))
            {
                Assert.True(tasks.Any(t => t.Source == leaving && t.Destination == task.Destination && t.Range.Contains(task.Range.End)),
                    $"{what}: the leaving {leaving} held the range but does not donate it");
            }

            foreach (var key in keys)
            {
                if (!task.Range.Contains(key))
                    continue;
                CheckGain(old, next, n, task, key, what);
                Assert.True(data[task.Source].Contains(key), $"{what}: source does not hold {key:x16}");
                // Each old replica sends its copy once; merging by version makes the copies harmless.
                Assert.True(delivered.Add((task.Destination, key, task.Source)), $"{what}: {key:x16} is sent to {task.Destination} twice by {task.Source}");
                after[task.Destination].Add(key);
            }
        }

        foreach (var (node, held) in after)
            held.RemoveWhere(key => !next.IsReplica(node, key, n));

        foreach (var key in keys)
        {
            var holders = after.Where(kv => kv.Value.Contains(key)).Select(kv => kv.Key).OrderBy(id => id).ToArray();
            var replicas = next.PreferenceList(key, n).OrderBy(id => id).ToArray();
            Assert.True(replicas.SequenceEqual(holders),
                $"{context}: {key:x16} is on [{string.Join(", ", holders)}], its preference list is [{string.Join(", ", replicas)}]");
        }
        return after;
    }

    private static void CheckGain(Ring old, Ring next, int n, TransferTask task, ulong key, string what)
    {
        Assert.True(next.IsReplica(task.Destination, key, n),
            $"{what}: destination is not a new replica of {key:x16} (new list [{string.Join(", ", next.PreferenceList(key, n))}])");
        Assert.False(old.IsReplica(task.Destination, key, n),
            $"{what}: destination already replicated {key:x16} (old list [{string.Join(", ", old.PreferenceList(key, n))}])");
        Assert.True(old.IsReplica(task.Source, key, n),
            $"{what}: source was not an old replica of {key:x16} (old list [{string.Join(", ", old.PreferenceList(key, n))}])");
    }
}
