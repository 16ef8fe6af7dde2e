using CsCheck;
using GTStore.Core;
using Version = GTStore.Core.Version;

namespace GTStore.Storage.Tests;

/// <summary>
/// The value cache against a model of the last value given for each key: a hit is always that
/// value, never an older one or another key's, while records wrap around a small ring, are
/// overwritten in place, share ring hashes and are evicted. Failures print a CsCheck seed; replay
/// with CsCheck_Seed=... .
/// </summary>
public sealed class ValueCacheTests
{
    private enum Op { Set, Update, Remove, Get, Clear }

    private readonly record struct Step(Op Op, int Key, int ValueLength, long Timestamp);

    // Eight keys of 1 to 8 bytes over three ring hashes, so that keys share hashes.
    private static readonly byte[][] Keys = [.. Enumerable.Range(0, 8).Select(i => Enumerable.Repeat((byte)('a' + i), i + 1).ToArray())];

    private static ulong HashOf(int key) => (ulong)(key % 3) * 0x9E37_79B9_7F4A_7C15UL;

    private static VersionedValue ValueOf(Step s) =>
        new(new Version(s.Timestamp, s.Key + 1), s.ValueLength < 0 ? null : [.. Enumerable.Range(0, s.ValueLength).Select(i => (byte)(s.Timestamp + i))]);

    private static readonly Gen<Step> GenStep = Gen.Select(
        Gen.Frequency((4, Gen.Const(Op.Set)), (3, Gen.Const(Op.Update)), (1, Gen.Const(Op.Remove)), (5, Gen.Const(Op.Get)), (1, Gen.Const(Op.Clear))),
        Gen.Int[0, Keys.Length - 1], Gen.Int[-1, 90], Gen.Long[1, 1_000_000],
        (op, key, length, ts) => new Step(op, key, length, ts));

    [Fact]
    public void A_hit_is_the_last_value_given_for_its_key_and_a_fitting_entry_just_set_is_a_hit()
    {
        Gen.Select(Gen.Int[0, 700], GenStep.Array[1, 200]).Sample((capacity, steps) =>
        {
            var cache = new ValueCache(capacity);
            var last = new Dictionary<int, VersionedValue>();
            foreach (var s in steps)
            {
                var key = Keys[s.Key];
                var hash = HashOf(s.Key);
                switch (s.Op)
                {
                    case Op.Set:
                    case Op.Update:
                        var cachedBefore = cache.TryGet(hash, key, out _);
                        var value = ValueOf(s);
                        if (s.Op == Op.Set)
                            cache.Set(hash, key, value);
                        else
                            cache.Update(hash, key, value);
                        last[s.Key] = value;
                        var fits = (ValueCache.RecordHeaderBytes + key.Length + Math.Max(s.ValueLength, 0) + 7) / 8 * 8 <= capacity / 8 * 8 / 4; // records are 8-byte aligned
                        if (fits && (s.Op == Op.Set || cachedBefore))
                        {
                            Assert.True(cache.TryGet(hash, key, out var got), $"{s.Op} of a {s.ValueLength}-byte value missed at once, capacity {capacity}");
                            Assert.Equal(value.Version, got.Version);
                        }
                        break;
                    case Op.Remove:
                        cache.Remove(hash, key);
                        last.Remove(s.Key);
                        Assert.False(cache.TryGet(hash, key, out _), "a removed key hit");
                        break;
                    case Op.Clear:
                        cache.Clear();
                        last.Clear();
                        break;
                    case Op.Get:
                        if (cache.TryGet(hash, key, out var hit))
                        {
                            Assert.True(last.TryGetValue(s.Key, out var expected), "a hit for a key never given since it was removed");
                            Assert.Equal(expected.Version, hit.Version);
                            Assert.Equal(expected.Value, hit.Value);
                        }
                        break;
                }
                Assert.InRange(cache.Bytes + (long)ValueCache.EntryOverheadBytes * cache.Count, 0, capacity);
                Assert.InRange(cache.Count, 0, 3);
            }
        }, iter: 3000);
    }

    [Fact]
    public void A_value_too_big_for_a_quarter_of_the_cache_is_not_cached_and_drops_the_key_s_entry()
    {
        var cache = new ValueCache(1024);
        var key = "k"u8.ToArray();
        cache.Set(7, key, new VersionedValue(new Version(1, 1), new byte[10]));
        Assert.True(cache.TryGet(7, key, out _));
        cache.Update(7, key, new VersionedValue(new Version(2, 1), new byte[1024 / 4]));
        Assert.False(cache.TryGet(7, key, out _));
        Assert.Equal(0, cache.Bytes);
    }
}
