using System.Text;
using GTStore.Core;
using GTStore.Core.Messages;

namespace GTStore.Simulation;

/// <summary>
/// The seed's test application ("Client Driver Application") run as a deterministic simulation:
/// 2N nodes, K clients each putting a key, every node replaced one by one while writes continue,
/// every key read back, then nodes leave down to N. Checks DESIGN.md's invariants: every
/// acknowledged write is readable, and each key sits on exactly the N nodes of its preference list.
/// </summary>
public sealed class SeedScenarioTests
{
    private static readonly int[] FixedSeeds = [1, 2, 3, 42, 1234, 99_991];

    public static TheoryData<int> Seeds() => SimSeeds.With(FixedSeeds);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Seed_scenario_replaces_every_node_without_losing_an_acknowledged_write(int seed)
    {
        var config = new ClusterConfig { ReplicationFactor = 3, ReadQuorum = 2, WriteQuorum = 2, TokensPerNode = 3 };
        var sim = new SimCluster(seed, config);
        var n = config.ReplicationFactor;
        const int clientCount = 40;

        // Start the manager and 2N nodes.
        for (var i = 0; i < 2 * n; i++)
            sim.StartNode();
        sim.RunUntil(() => Settled(sim, 2 * n), 60_000, "2N nodes up");

        // K clients, each putting one key.
        var acked = new Dictionary<string, string>();
        var clients = Enumerable.Range(0, clientCount).Select(_ => new SimClient(sim)).ToList();
        var pending = clientCount;
        for (var i = 0; i < clientCount; i++)
        {
            var (client, key, value) = (clients[i], $"key-{i}", $"value-{i}");
            client.Init(() => client.Send(Put(key, value), reply =>
            {
                pending--;
                if (reply.Status == ReplyStatus.Ok)
                    acked[key] = value;
            }));
        }
        sim.RunUntil(() => pending == 0, 60_000, "initial puts answered");
        Assert.Equal(clientCount, acked.Count);

        // Replace every original node one by one, writing new keys while the transfers run.
        var writer = new SimClient(sim);
        var written = 0;
        foreach (var original in sim.Nodes.Keys.Order().ToList())
        {
            var left = false;
            sim.ManagerRequest(new AdminLeave(original), reply => left = reply is OkReply);
            for (var w = 0; w < 5; w++)
            {
                var (key, value) = ($"during-{original}-{w}", $"v{written++}");
                var delay = sim.Random.Next(1, 200);
                sim.Schedule(delay, () => writer.Init(() => writer.Send(Put(key, value), reply =>
                {
                    if (reply.Status == ReplyStatus.Ok)
                        acked[key] = value;
                    else if (reply.Status == ReplyStatus.Failed)
                        Assert.Fail($"write of {key} failed during transfer: {reply.Error} [seed {seed}]");
                })));
            }
            sim.RunUntil(() => left, 120_000, $"{original} left");
            sim.StartNode();
            sim.RunUntil(() => Settled(sim, 2 * n), 120_000, $"replacement of {original} joined");
        }

        // Every client reads its key back (re-initialising: its forwarder has left).
        var lost = new List<string>();
        var reads = 0;
        foreach (var (key, value) in acked)
        {
            var reader = new SimClient(sim);
            reads++;
            reader.Init(() => reader.Send(Get(key), reply =>
            {
                reads--;
                if (reply.Status != ReplyStatus.Ok || Encoding.UTF8.GetString(reply.Value!.Value.Value!) != value)
                    lost.Add($"{key}: {reply.Status} {reply.Error}");
            }));
        }
        sim.RunUntil(() => reads == 0, 120_000, "reads answered");
        if (lost.Count > 0)
            throw new SimulationException(seed, $"{lost.Count} acknowledged writes lost: {string.Join("; ", lost.Take(5))}");

        AssertEachKeyOnExactlyItsReplicas(sim, acked.Keys, seed);

        // Nodes leave until N remain (fewer cannot hold N replicas).
        foreach (var node in sim.Nodes.Where(kv => kv.Value.Alive).Select(kv => kv.Key).Order().Take(n).ToList())
        {
            var left = false;
            sim.ManagerRequest(new AdminLeave(node), reply => left = reply is OkReply);
            sim.RunUntil(() => left, 120_000, $"{node} left at the end");
        }
        sim.RunUntil(() => Settled(sim, n), 60_000, "N nodes remain");
        AssertEachKeyOnExactlyItsReplicas(sim, acked.Keys, seed);
    }

    internal static bool Settled(SimCluster sim, int nodes)
    {
        var status = sim.Manager.Status();
        return !status.InTransition
            && status.Members.Count == nodes
            && status.Members.All(m => m.State == MemberState.Up)
            // A node that left exits on LeaveDone, which may arrive after the leave was answered.
            && sim.Nodes.Values.Count(n => n.Alive) == nodes
            && sim.Nodes.Values.Where(n => n.Alive).All(n => n.Machine.Current.Epoch == status.Epoch && n.Machine.Pending is null);
    }

    /// <summary>
    /// DESIGN.md: "after the cluster settles, each key is on exactly the N nodes of its preference
    /// list". A write acknowledged by W of N replicas reaches the rest through hints and
    /// anti-entropy, so the check waits (bounded, in virtual time) for that before it fails.
    /// </summary>
    internal static void AssertEachKeyOnExactlyItsReplicas(SimCluster sim, IEnumerable<string> keys, int seed)
    {
        var list = keys.ToList();
        string? problem = null;
        try
        {
            sim.RunUntil(() => (problem = PlacementProblem(sim, list)) is null, 60_000, "each key on exactly its preference list");
        }
        catch (SimulationException)
        {
            throw new SimulationException(seed, problem ?? "placement never settled");
        }
    }

    private static string? PlacementProblem(SimCluster sim, IEnumerable<string> keys)
    {
        var ring = sim.Manager.Current;
        var n = sim.Manager.Config.ReplicationFactor;
        foreach (var key in keys)
        {
            var bytes = Encoding.UTF8.GetBytes(key);
            var hash = KeyHash.Of(bytes);
            var expected = ring.PreferenceList(hash, n).Order().ToArray();
            var holders = sim.Nodes.Where(kv => kv.Value.Alive && kv.Value.Engine.Get(hash, bytes) is not null)
                .Select(kv => kv.Key).Order().ToArray();
            if (!expected.SequenceEqual(holders))
                return $"{key} is on [{string.Join(", ", holders)}], expected its preference list [{string.Join(", ", expected)}]";
        }
        return null;
    }

    private static ClientRequest Put(string key, string value) =>
        new(ClientOp.Put, Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value));

    private static ClientRequest Get(string key) => new(ClientOp.Get, Encoding.UTF8.GetBytes(key), null);
}
