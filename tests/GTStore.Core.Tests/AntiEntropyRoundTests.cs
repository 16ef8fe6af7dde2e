using System.Text;
using GTStore.Core.Messages;
using static GTStore.Core.Tests.TestRings;

namespace GTStore.Core.Tests;

/// <summary>
/// A whole anti-entropy round between two replicas, hand-delivered: summary, the finer parts of
/// the slices that differ, then the entries of the parts that still differ, each way.
/// </summary>
public sealed class AntiEntropyRoundTests
{
    private static readonly ClusterConfig Config3 = new() { ReplicationFactor = 3, ReadQuorum = 2, WriteQuorum = 2 };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_round_exchanges_only_the_entries_of_the_buckets_that_differ(bool bucketDigests)
    {
        var ring = Grown(3, 3);
        var nodes = HandWired.Nodes(ring, Config3, bucketDigests);
        var (starter, starterOut, starterStore) = nodes[N(1)];
        var range = ring.Partitions(3).First(p => Array.IndexOf(p.Replicas, N(1)) >= 0).Range;
        var keys = KeysIn(range, 3000);
        var shared = keys.Take(2990).ToList();
        foreach (var (_, _, store) in nodes.Values)
            foreach (var key in shared)
                store.Put(KeyHash.Of(key), key, new VersionedValue(new Version(1, 1), [1]));
        // Five keys only the starter holds, five only its peer holds, and one the peer holds older.
        var onlyStarter = keys.Skip(2990).Take(5).ToList();
        var onlyPeer = keys.Skip(2995).ToList();
        foreach (var key in onlyStarter)
            starterStore.Put(KeyHash.Of(key), key, new VersionedValue(new Version(2, 1), [2]));
        var stale = shared[0];
        starterStore.Put(KeyHash.Of(stale), stale, new VersionedValue(new Version(3, 1), [3]));

        starter.Tick(10_000);
        var (peerId, digest) = starterOut.Sends.Single(s => s.Message is SyncDigest);
        Assert.Equal(range, ((SyncDigest)digest).Range);
        var (peer, peerOut, peerStore) = nodes[peerId];
        foreach (var key in onlyPeer)
            peerStore.Put(KeyHash.Of(key), key, new VersionedValue(new Version(2, 2), [4]));
        starterOut.Clear();

        peer.OnMessage(10_001, digest);
        var parts = Assert.IsType<SyncParts>(Assert.Single(peerOut.Sends).Message);
        // The buckets of the (at most 11) differing slices, not the range's.
        var differingSlices = onlyStarter.Concat(onlyPeer).Append(stale).Select(k => AntiEntropy.SliceOf(range, KeyHash.Of(k))).Distinct().Count();
        var bucketsPerSlice = (int)(range.Width >> (64 - AntiEntropy.BucketBits)) / AntiEntropy.Leaves + 2;
        Assert.InRange(parts.Parts.Count, differingSlices, differingSlices * bucketsPerSlice);
        peerOut.Clear();

        starter.OnMessage(10_002, parts);
        var ours = Assert.IsType<SyncEntries>(Assert.Single(starterOut.Sends).Message);
        Assert.False(ours.Final);
        Assert.True(ours.Parts.Count <= 11, $"{ours.Parts.Count} parts differ, 11 keys do");
        // The entries of the differing buckets: the 6 keys and the few others sharing their buckets.
        Assert.InRange(ours.Entries.Count, 6, 20);
        starterOut.Clear();

        peer.OnMessage(10_003, ours);
        var theirs = Assert.IsType<SyncEntries>(Assert.Single(peerOut.Sends).Message);
        Assert.True(theirs.Final);
        starter.OnMessage(10_004, theirs);
        Assert.Empty(starterOut.Sends); // The round ends there.

        foreach (var key in keys)
        {
            var (a, b) = (starterStore.Get(KeyHash.Of(key), key)!.Value, peerStore.Get(KeyHash.Of(key), key)!.Value);
            Assert.Equal(a.Version, b.Version);
            Assert.Equal(a.Value, b.Value);
        }
        Assert.Equal(new Version(3, 1), peerStore.Get(KeyHash.Of(stale), stale)!.Value.Version);
        Assert.Equal(6, peer.AntiEntropyRepairs);
        Assert.Equal(5, starter.AntiEntropyRepairs);
    }

    [Fact]
    public void Parts_outside_the_range_compared_are_ignored()
    {
        var ring = Grown(3, 3);
        var nodes = HandWired.Nodes(ring, Config3);
        var (node, outbox, store) = nodes[N(1)];
        var partition = ring.Partitions(3).First(p => Array.IndexOf(p.Replicas, N(1)) >= 0);
        var peer = partition.Replicas.First(r => r != N(1));
        var outside = new HashRange(partition.Range.End, unchecked(partition.Range.End + 1000));
        var key = KeysIn(partition.Range, 1)[0];
        store.Put(KeyHash.Of(key), key, new VersionedValue(new Version(1, 1), [1]));

        node.OnMessage(1, new SyncParts(peer, partition.Range, [outside], [123]));
        node.OnMessage(1, new SyncEntries(peer, partition.Range, [outside], [], Final: false));
        node.OnMessage(1, new SyncParts(peer, partition.Range, [partition.Range], [1, 2])); // digests do not match parts
        Assert.Empty(outbox.Sends);
    }

    private static List<byte[]> KeysIn(HashRange range, int count)
    {
        var keys = new List<byte[]>();
        for (var i = 0; keys.Count < count; i++)
        {
            var key = Encoding.UTF8.GetBytes($"ae{i}");
            if (range.Contains(KeyHash.Of(key)))
                keys.Add(key);
        }
        return keys;
    }
}
