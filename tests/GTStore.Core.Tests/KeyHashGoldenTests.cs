using System.IO.Hashing;
using System.Text;

namespace GTStore.Core.Tests;

/// <summary>
/// KeyHash.cs: "The algorithm and seed are part of the on-disk and on-wire format: changing either
/// moves every key, so golden-vector tests freeze them."
/// The vectors below were computed once from the code and are now the format: never regenerate them.
/// (They were regenerated once, deliberately, when ring positions became slot-first so that Redis
/// Cluster clients can route by slot; data directories written before that are not readable.)
/// </summary>
public sealed class KeyHashGoldenTests
{
    private static byte[] Pattern1000()
    {
        var bytes = new byte[1000];
        for (var i = 0; i < bytes.Length; i++)
            bytes[i] = (byte)(i % 256);
        return bytes;
    }

    public static TheoryData<string, byte[], ulong> Golden => new()
    {
        { "empty key", [], 0x00021439AA4DEFFBUL },
        { "\"a\"", Encoding.UTF8.GetBytes("a"), 0xF21F3FEBFA71C9B6UL },
        { "\"key-1\"", Encoding.UTF8.GetBytes("key-1"), 0x0397A400C1181454UL },
        { "1000 bytes of 0..255 repeating", Pattern1000(), 0xFC6E54B88C1A2EE6UL },
    };

    [Theory]
    [MemberData(nameof(Golden))]
    public void Key_hash_matches_the_frozen_golden_vector(string name, byte[] key, ulong expected)
    {
        Assert.True(expected == KeyHash.Of(key), $"{name}: expected {expected:X16}, got {KeyHash.Of(key):X16}");
    }

    [Theory]
    [MemberData(nameof(Golden))]
    public void Key_hash_is_the_redis_slot_then_the_top_50_bits_of_xxh3_64_with_the_GTStore1_seed(string name, byte[] key, ulong expected)
    {
        _ = name;
        _ = expected;
        var slot = (ulong)KeySlot.Of(key);
        Assert.Equal((slot << 50) | (XxHash3.HashToUInt64(key, 0x4754_5374_6F72_6531) >> 14), KeyHash.Of(key));
    }

    [Fact]
    public void Key_hash_seed_is_the_ascii_of_GTStore1()
    {
        // KeyHash.cs: "XXH3 seed; frozen." The constant spells "GTStore1" in big-endian ASCII.
        Assert.Equal(0x4754_5374_6F72_6531L, KeyHash.Seed);
        Assert.Equal("GTStore1", Encoding.ASCII.GetString(BitConverter.GetBytes(KeyHash.Seed).Reverse().ToArray()));
    }

    [Fact]
    public void Key_hash_depends_on_every_byte_of_the_key()
    {
        // DESIGN.md Versions: "Keys and values are binary-safe bytes." A zero byte is part of the key.
        Assert.NotEqual(KeyHash.Of([0x61]), KeyHash.Of([0x61, 0x00]));
        Assert.NotEqual(KeyHash.Of([0x00]), KeyHash.Of([]));
    }
}
