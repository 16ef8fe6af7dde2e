using System.Text;

namespace GTStore.Core.Tests;

/// <summary>
/// Redis Cluster's key slots (CRC16/XMODEM modulo 16384 of the key or its hash tag), which place
/// keys on the ring so that cluster-aware Redis clients can route by slot.
/// </summary>
public sealed class KeySlotTests
{
    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Crc16_is_xmodem()
    {
        // The standard check value of CRC-16/XMODEM, also given in the Redis Cluster specification.
        Assert.Equal(0x31C3, KeySlot.Crc16(Bytes("123456789")));
    }

    [Theory]
    // Values a Redis 7 server answers for CLUSTER KEYSLOT.
    [InlineData("foo", 12182)]
    [InlineData("bar", 5061)]
    [InlineData("hello", 866)]
    [InlineData("123456789", 12739)]
    [InlineData("", 0)]
    public void Slot_matches_redis(string key, int slot)
    {
        Assert.Equal(slot, KeySlot.Of(Bytes(key)));
    }

    [Theory]
    [InlineData("{user1000}.following", "user1000")]
    [InlineData("foo{bar}{zap}", "bar")]
    [InlineData("foo{}{bar}", "foo{}{bar}")]
    [InlineData("foo{{bar}}zap", "{bar")]
    [InlineData("foo{bar", "foo{bar")]
    [InlineData("}{x}", "x")]
    public void Hash_tag_follows_the_cluster_specification(string key, string hashed)
    {
        Assert.Equal(hashed, Encoding.UTF8.GetString(KeySlot.HashTag(Bytes(key))));
        Assert.Equal(KeySlot.Of(Bytes(hashed)), KeySlot.Of(Bytes(key)));
    }

    [Fact]
    public void Keys_with_one_hash_tag_share_a_slot_and_the_slot_leads_the_ring_position()
    {
        var a = KeyHash.Of(Bytes("{user42}:name"));
        var b = KeyHash.Of(Bytes("{user42}:mail"));
        Assert.Equal(KeyHash.SlotOf(a), KeyHash.SlotOf(b));
        Assert.NotEqual(a, b);
        for (var i = 0; i < 1000; i++)
        {
            var key = Bytes("key:" + i);
            Assert.Equal(KeySlot.Of(key), KeyHash.SlotOf(KeyHash.Of(key)));
        }
    }

    [Fact]
    public void Slot_ranges_cover_every_slot_once_and_name_the_replicas_of_the_keys_in_them()
    {
        var ring = TestRings.Grown(7, 8);
        ring = TokenAllocator.Leave(TokenAllocator.Join(ring, new NodeId(99), "x", 8, 2), new NodeId(3), 3);
        var ranges = ring.SlotRanges(3);
        Assert.Equal(0, ranges[0].First);
        Assert.Equal(KeySlot.Count - 1, ranges[^1].Last);
        for (var i = 1; i < ranges.Count; i++)
            Assert.Equal(ranges[i - 1].Last + 1, ranges[i].First);
        Assert.All(ranges, r => Assert.Equal(3, r.Replicas.Length));

        // Tokens sit at the ends of slot arcs, so each slot lies within one range and every key's
        // replicas are those its slot lists.
        Assert.All(ring.Tokens, t => Assert.Equal((1UL << KeyHash.SlotShift) - 1, t.Position & ((1UL << KeyHash.SlotShift) - 1)));
        for (var i = 0; i < 20_000; i++)
        {
            var key = Bytes("k" + i);
            var slot = KeySlot.Of(key);
            var range = ranges.First(r => r.First <= slot && slot <= r.Last);
            Assert.Equal(range.Replicas, ring.PreferenceList(KeyHash.Of(key), 3));
        }
    }
}
