using GTStore.Core;
using GTStore.Core.Messages;
using Version = GTStore.Core.Version;

namespace GTStore.Protocol.Tests;

/// <summary>
/// Message payloads round-trip through <see cref="MessageCodec"/> and malformed ones are rejected
/// naming the field (docs/ARCHITECTURE.md "Wire protocol"). Here: the messages of tombstone purge
/// and the fields it added to existing ones, and anti-entropy's finer exchange.
/// </summary>
public sealed class MessageCodecTests
{
    private static T RoundTrip<T>(T message) where T : Message =>
        Assert.IsType<T>(MessageCodec.Decode(MessageCodec.TypeOf(message), MessageCodec.Encode(message)));

    private static readonly StoredEntry[] Tombstones =
    [
        new(7, [1, 2], new VersionedValue(new Version(123_456 << 16, 3), null)),
        new(ulong.MaxValue, [0], new VersionedValue(new Version(long.MaxValue, 1), null)),
    ];

    private static void AssertEntries(IReadOnlyList<StoredEntry> expected, IReadOnlyList<StoredEntry> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Hash, actual[i].Hash);
            Assert.Equal(expected[i].Key, actual[i].Key);
            Assert.Equal(expected[i].Value.Version, actual[i].Value.Version);
            Assert.True(actual[i].Value.IsTombstone);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Replica_reads_and_their_replies_carry_whether_only_the_version_is_wanted(bool versionOnly)
    {
        var read = RoundTrip(new ReplicaRead(5, new NodeId(2), [1, 2, 3], new NodeId(4), versionOnly));
        Assert.Equal((5L, new NodeId(2), new NodeId(4), versionOnly), (read.OpId, read.From, read.HintFor, read.VersionOnly));
        Assert.Equal([1, 2, 3], read.Key);
        var reply = RoundTrip(new ReplicaReadReply(5, new NodeId(3), true, new VersionedValue(new Version(77, 3), null), null, versionOnly));
        Assert.Equal((5L, new NodeId(3), true, new Version(77, 3), versionOnly), (reply.OpId, reply.From, reply.Ok, reply.Value!.Value.Version, reply.VersionOnly));
    }

    [Fact]
    public void Purge_proposal_round_trips()
    {
        var m = new PurgeProposal(42, new NodeId(3), 9, new HashRange(100, 5), Tombstones);
        var back = RoundTrip(m);
        Assert.Equal((m.OpId, m.From, m.Epoch, m.Range), (back.OpId, back.From, back.Epoch, back.Range));
        AssertEntries(m.Entries, back.Entries);
    }

    [Fact]
    public void Anti_entropy_parts_and_their_entries_round_trip()
    {
        HashRange[] parts = [new(ulong.MaxValue, 0xFFFFUL << 48), new(3, 3), new(1UL << 48, (2UL << 48) - 1)];
        var m = new SyncParts(new NodeId(6), new HashRange(9, 8), parts, [0, ulong.MaxValue, 42]);
        var back = RoundTrip(m);
        Assert.Equal((m.From, m.Range), (back.From, back.Range));
        Assert.Equal(parts, back.Parts);
        Assert.Equal(m.Digests, back.Digests);

        var entries = RoundTrip(new SyncEntries(new NodeId(2), new HashRange(0, 0), parts, Tombstones, Final: true));
        Assert.Equal((new NodeId(2), new HashRange(0, 0), true), (entries.From, entries.Range, entries.Final));
        Assert.Equal(parts, entries.Parts);
        AssertEntries(Tombstones, entries.Entries);
    }

    [Fact]
    public void Anti_entropy_parts_claiming_more_than_the_payload_holds_are_rejected_naming_them()
    {
        var payload = MessageCodec.Encode(new SyncParts(new NodeId(1), new HashRange(1, 2), [new(1, 2)], [7]));
        payload[^26] = 1; // the count (little-endian, just before the one part) becomes 65,537: far more than follow
        var e = Assert.Throws<ProtocolException>(() => MessageCodec.Decode(MessageCodec.TypeOf(new SyncParts(new NodeId(1), new HashRange(1, 2), [], [])), payload));
        Assert.Contains("parts", e.Message);
    }

    [Fact]
    public void Purge_confirm_round_trips_with_and_without_indices()
    {
        var back = RoundTrip(new PurgeConfirm(42, new NodeId(2), [0, 5, 1023]));
        Assert.Equal((42L, new NodeId(2)), (back.OpId, back.From));
        Assert.Equal([0, 5, 1023], back.Held);
        Assert.Empty(RoundTrip(new PurgeConfirm(1, new NodeId(1), [])).Held);
    }

    [Fact]
    public void Purge_commit_round_trips()
    {
        var m = new PurgeCommit(new NodeId(4), 11, new HashRange(0, 0), Tombstones);
        var back = RoundTrip(m);
        Assert.Equal((m.From, m.Epoch, m.Range), (back.From, back.Epoch, back.Range));
        AssertEntries(m.Entries, back.Entries);
    }

    [Fact]
    public void Purge_floor_and_heartbeat_with_hint_floor_round_trip()
    {
        Assert.Equal(new PurgeFloor(7, 99 << 16), RoundTrip(new PurgeFloor(7, 99 << 16)));
        Assert.Equal(new PurgeFloor(0, 0), RoundTrip(new PurgeFloor(0, 0)));
        Assert.Equal(new Heartbeat(new NodeId(5), long.MaxValue), RoundTrip(new Heartbeat(new NodeId(5), long.MaxValue)));
    }

    [Fact]
    public void Node_stats_carry_the_tombstone_request_handover_and_value_cache_counts()
    {
        var m = new NodeStatsReply(new NodeId(1), 77, 10, 3, false, "memory", 2, "127.0.0.1:7000", TombstonesPurged: 12345,
            RequestsCoordinated: 1L << 40, RequestsForwarded: 98765, Handovers: 3,
            ValueCacheHits: 1L << 41, ValueCacheMisses: 4321, ValueCacheBytes: 48L << 20, Tombstones: 7);
        Assert.Equal(m, RoundTrip(m));
    }

    [Fact]
    public void Cluster_config_carries_the_tombstone_grace()
    {
        var config = new ClusterConfig { TombstoneGraceMs = 123_456 };
        var back = RoundTrip(new JoinReply(new NodeId(1), config));
        Assert.Equal(config, back.Config);
    }

    public static TheoryData<string, ushort, byte[], string> MalformedCases => new()
    {
        // A proposal that stops inside its epoch.
        { "truncated proposal", 27, [1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9, 0], "epoch" },
        // A confirm announcing more indices than its bytes can hold.
        { "confirm count too large", 28, [.. new byte[8], 1, 0, 0, 0, 0xFF, 0xFF, 0, 0], "held" },
        // A floor with a trailing byte.
        { "floor with trailing byte", 26, [.. new byte[16], 1], "PurgeFloor" },
    };

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Malformed_purge_messages_are_rejected_naming_the_field(string name, ushort type, byte[] payload, string expected)
    {
        var error = Assert.Throws<ProtocolException>(() => MessageCodec.Decode(type, payload));
        Assert.True(error.Message.Contains(expected, StringComparison.Ordinal), $"{name}: {error.Message}");
    }

    [Fact]
    public void A_write_cut_inside_a_length_prefix_is_rejected_naming_the_length()
    {
        var write = new ReplicaWrite(5, new NodeId(2), [1, 2, 3], new VersionedValue(new Version(77, 3), [9, 9]));
        var payload = MessageCodec.Encode(write);
        var cut = payload[..^8]; // The stand-in id after the value (4 bytes), the value (2) and 2 of its length prefix.
        var error = Assert.Throws<ProtocolException>(() => MessageCodec.Decode(MessageCodec.TypeOf(write), cut));
        Assert.Equal("truncated message: value length needs 4 bytes, 2 left", error.Message);
    }

    [Fact]
    public void A_config_with_a_tombstone_grace_below_its_minimum_is_rejected_naming_the_flag()
    {
        var bad = new ClusterConfig { TombstoneGraceMs = 1_000 };
        var payload = MessageCodec.Encode(new JoinReply(new NodeId(1), bad));
        var error = Assert.Throws<ProtocolException>(() => MessageCodec.Decode(MessageCodec.TypeOf(new JoinReply(new NodeId(1), bad)), payload));
        Assert.Contains("--tombstone-grace-ms", error.Message);
    }
}
