using CsCheck;

namespace GTStore.Storage.Tests;

/// <summary>
/// The engine's open-addressing map against <see cref="Dictionary{TKey,TValue}"/> as a model:
/// after any run of adds, replacements, removals and clears, every key reads back as the model
/// has it, absent keys are absent, and the count and values agree, through the table's growth,
/// runs of keys wrapping past its end, removals from the middle of a run, and the key 0 (which
/// marks an empty slot inside the table). Failures print a CsCheck seed; replay with
/// CsCheck_Seed=... .
/// </summary>
public sealed class RingHashMapTests
{
    private enum Op { Set, AddIfMissing, Remove, Clear }

    private readonly record struct Step(Op Op, ulong Key, int Value);

    // Keys from a small set, so that operations meet the keys of earlier ones; 0 and the ends
    // of the range included, and values near each other so that home slots collide.
    private static readonly Gen<ulong> GenKey = Gen.OneOf(Gen.ULong[0, 40], Gen.ULong[ulong.MaxValue - 8, ulong.MaxValue], Gen.ULong[0, 40].Select(k => k << 58));

    private static readonly Gen<Step> GenStep = Gen.Select(
        Gen.Frequency((8, Gen.Const(Op.Set)), (4, Gen.Const(Op.AddIfMissing)), (5, Gen.Const(Op.Remove)), (1, Gen.Const(Op.Clear))),
        GenKey, Gen.Int).Select((op, key, value) => new Step(op, key, value));

    // Every key GenKey can draw, so that keys absent from the model are looked up too.
    private static readonly ulong[] ProbeKeys =
    [
        .. Enumerable.Range(0, 41).Select(k => (ulong)k),
        .. Enumerable.Range(0, 9).Select(k => ulong.MaxValue - (ulong)k),
        .. Enumerable.Range(0, 41).Select(k => (ulong)k << 58),
    ];

    [Fact]
    public void Every_key_reads_back_as_a_dictionary_given_the_same_steps_has_it()
    {
        GenStep.Array[1, 400].Sample(steps =>
        {
            var map = new RingHashMap<int>();
            var model = new Dictionary<ulong, int>();
            foreach (var s in steps)
            {
                switch (s.Op)
                {
                    case Op.Set:
                        map[s.Key] = s.Value;
                        model[s.Key] = s.Value;
                        break;
                    case Op.AddIfMissing:
                        ref var slot = ref map.GetValueRefOrAddDefault(s.Key, out var exists);
                        Assert.Equal(model.ContainsKey(s.Key), exists);
                        if (!exists)
                        {
                            Assert.Equal(0, slot);
                            slot = s.Value;
                            model[s.Key] = s.Value;
                        }
                        break;
                    case Op.Remove:
                        Assert.Equal(model.Remove(s.Key), map.Remove(s.Key));
                        break;
                    case Op.Clear:
                        map.Clear();
                        model.Clear();
                        break;
                }
                Assert.Equal(model.Count, map.Count);
            }
            foreach (var key in ProbeKeys.Concat(model.Keys))
            {
                Assert.Equal(model.TryGetValue(key, out var expected), map.TryGetValue(key, out var actual));
                Assert.Equal(expected, actual);
            }
            Assert.Equal(model.Values.Order(), map.Values.Order());
            var keys = new ulong[map.Count];
            var values = new int[map.Count];
            Assert.Equal(model.Count, map.CopyTo(keys, values));
            Assert.Equal(model.OrderBy(e => e.Key), keys.Zip(values, KeyValuePair.Create).OrderBy(e => e.Key));
            foreach (var key in ProbeKeys)
                map.Prefetch(key); // A hint: it changes nothing.
            Assert.Equal(model.Count, map.Count);
        });
    }

    // Growth past three quarters full keeps every key: 100,000 keys, removed again one in three.
    // The table grows by half, so its sizes are not powers of two and home slots scale to each.
    [Fact]
    public void A_map_grown_to_a_hundred_thousand_keys_keeps_each_and_forgets_those_removed()
    {
        var map = new RingHashMap<long>();
        for (ulong k = 1; k <= 100_000; k++)
            map[k * 0x1_0000_0001UL] = (long)k;
        for (ulong k = 3; k <= 100_000; k += 3)
            Assert.True(map.Remove(k * 0x1_0000_0001UL));
        Assert.Equal(100_000 - 33_333, map.Count);
        for (ulong k = 1; k <= 100_000; k++)
        {
            var held = map.TryGetValue(k * 0x1_0000_0001UL, out var value);
            Assert.Equal(k % 3 != 0, held);
            Assert.Equal(held ? (long)k : 0, value);
        }
    }
}
