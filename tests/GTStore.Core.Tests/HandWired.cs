using GTStore.Core.Messages;

namespace GTStore.Core.Tests;

/// <summary>Node machines wired by hand: joined, holding a ring, outboxes cleared; the test delivers messages.</summary>
internal static class HandWired
{
    public static (NodeMachine Node, Outbox Out, FakeStore Store) Node(int id, Ring ring, ClusterConfig config, bool bucketSummaries = false)
    {
        var outbox = new Outbox();
        var store = new FakeStore { KeepsBucketSummaries = bucketSummaries };
        var node = new NodeMachine(store, outbox, id);
        node.OnJoined(new NodeId(id), config);
        node.OnMessage(0, new RingUpdate(config, ring, null));
        outbox.Clear();
        return (node, outbox, store);
    }

    /// <summary>Every member of <paramref name="ring"/>, by id.</summary>
    public static Dictionary<NodeId, (NodeMachine Node, Outbox Out, FakeStore Store)> Nodes(Ring ring, ClusterConfig config, bool bucketSummaries = false) =>
        ring.Members.Keys.ToDictionary(id => id, id => Node(id.Value, ring, config, bucketSummaries));

    /// <summary>A key whose N=<paramref name="n"/> replicas on <paramref name="ring"/> leave out <paramref name="node"/>.</summary>
    public static byte[] KeyNotOn(Ring ring, NodeId node, int n = 3)
    {
        for (var i = 0; i < 100_000; i++)
        {
            var key = System.Text.Encoding.UTF8.GetBytes($"k{i}");
            if (Array.IndexOf(ring.PreferenceList(KeyHash.Of(key), n), node) < 0)
                return key;
        }
        throw new InvalidOperationException($"no key found that {node} does not replicate");
    }
}
