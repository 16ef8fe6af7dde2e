using CsCheck;

namespace GTStore.Core.Tests;

/// <summary>
/// DESIGN.md Versions: "Version order: HLC time, then node id. 'Latest version wins' by that order;
/// replicas that merge in any order converge to the same value." Seed, Consistency: "If multiple
/// versions of results are retrieved, the latest version wins."
/// </summary>
public sealed class VersionTests
{
    private static readonly Gen<Version> GenVersion =
        Gen.Select(Gen.Long[0, 6], Gen.Int[0, 4], (t, n) => new Version(t, n));

    // A version names one write, so the value (or tombstone) is a function of the version: equal
    // versions carry equal values, as they do in the store.
    private static readonly Gen<VersionedValue> GenValue = GenVersion.Select(v =>
        new VersionedValue(v, (v.Timestamp + v.Node) % 3 == 0 ? null : System.Text.Encoding.UTF8.GetBytes(v.ToString())));

    [Fact]
    public void Version_orders_by_timestamp_first()
    {
        Assert.True(new Version(5, 1) > new Version(4, 9));
        Assert.True(new Version(4, 9) < new Version(5, 1));
    }

    [Fact]
    public void Version_breaks_timestamp_ties_by_node_id()
    {
        Assert.True(new Version(5, 2) > new Version(5, 1));
        Assert.Equal(0, new Version(5, 2).CompareTo(new Version(5, 2)));
        Assert.Equal(new Version(5, 2), Version.Max(new Version(5, 1), new Version(5, 2)));
        Assert.Equal(new Version(5, 2), Version.Max(new Version(5, 2), new Version(5, 1)));
    }

    [Fact]
    public void Version_order_is_a_total_order()
    {
        Gen.Select(GenVersion, GenVersion, GenVersion).Sample((a, b, c) =>
        {
            Assert.Equal(-Math.Sign(a.CompareTo(b)), Math.Sign(b.CompareTo(a)));
            Assert.Equal(a == b, a.CompareTo(b) == 0);
            if (a <= b && b <= c)
                Assert.True(a <= c);
            Assert.Equal(a < b, a.Timestamp < b.Timestamp || (a.Timestamp == b.Timestamp && a.Node < b.Node));
        }, iter: 1000);
    }

    [Fact]
    public void Latest_is_commutative()
    {
        Gen.Select(GenValue, GenValue).Sample((a, b) =>
            Assert.Equal(VersionedValue.Latest(a, b).Version, VersionedValue.Latest(b, a).Version), iter: 1000);
    }

    [Fact]
    public void Latest_is_associative()
    {
        Gen.Select(GenValue, GenValue, GenValue).Sample((a, b, c) =>
            Assert.Equal(
                VersionedValue.Latest(VersionedValue.Latest(a, b), c).Version,
                VersionedValue.Latest(a, VersionedValue.Latest(b, c)).Version), iter: 1000);
    }

    [Fact]
    public void Latest_picks_the_higher_version_even_when_it_is_a_tombstone()
    {
        var put = new VersionedValue(new Version(10, 1), [1]);
        var delete = new VersionedValue(new Version(11, 1), null);
        Assert.True(VersionedValue.Latest(put, delete).IsTombstone);
        Assert.True(VersionedValue.Latest(delete, put).IsTombstone);
    }

    [Fact]
    public void Merging_versioned_values_in_any_order_gives_the_same_winner()
    {
        Gen.Select(GenValue.Array[1, 12], Gen.Int.Array[12]).Sample((values, keys) =>
        {
            var shuffled = values.Select((v, i) => (v, keys[i])).OrderBy(p => p.Item2).Select(p => p.v).ToArray();
            var forward = values.Aggregate(VersionedValue.Latest);
            var permuted = shuffled.Aggregate(VersionedValue.Latest);
            var backward = values.Reverse().Aggregate(VersionedValue.Latest);
            Assert.Equal(forward.Version, permuted.Version);
            Assert.Equal(forward.Version, backward.Version);
            Assert.Equal(forward.Value, permuted.Value);
            Assert.Equal(values.Max(v => v.Version), forward.Version);
        }, iter: 1000);
    }

    [Fact]
    public void Hybrid_clock_is_strictly_increasing_even_when_physical_time_goes_backwards()
    {
        // HybridClock: "never going backwards and always above any timestamp observed".
        Gen.Long[0, 1L << 40].Array[1, 50].Sample(times =>
        {
            var clock = new HybridClock();
            var last = long.MinValue;
            foreach (var ms in times)
            {
                var t = clock.Next(ms);
                Assert.True(t > last, $"timestamp {t} after {last} (physical {ms} ms)");
                Assert.True(HybridClock.PhysicalMs(t) >= ms, "a timestamp is never below the physical time given");
                last = t;
            }
        }, iter: 500);
    }

    [Fact]
    public void Hybrid_clock_counts_logically_when_physical_time_stands_still_or_falls()
    {
        var clock = new HybridClock();
        var a = clock.Next(1000);
        var b = clock.Next(1000);
        var c = clock.Next(900);
        Assert.Equal(1000, HybridClock.PhysicalMs(a));
        Assert.Equal(0, HybridClock.Logical(a));
        Assert.Equal(a + 1, b);
        Assert.Equal(1, HybridClock.Logical(b));
        Assert.Equal(b + 1, c);
        var d = clock.Next(2000);
        Assert.Equal(2000, HybridClock.PhysicalMs(d));
        Assert.Equal(0, HybridClock.Logical(d));
    }

    [Fact]
    public void Hybrid_clock_next_exceeds_the_floor()
    {
        // DESIGN.md Request path: the coordinator stamps "never below what it holds for that key".
        var clock = new HybridClock();
        var held = (5000L << 16) + 7;
        var t = clock.Next(10, held);
        Assert.True(t > held);
        Gen.Select(Gen.Long[0, 1L << 40], Gen.Long[0, long.MaxValue >> 2]).Sample((ms, floor) =>
        {
            var c = new HybridClock();
            Assert.True(c.Next(ms, floor) > floor);
        }, iter: 500);
    }

    [Fact]
    public void Hybrid_clock_observe_raises_later_timestamps_above_what_was_seen()
    {
        var clock = new HybridClock();
        clock.Next(100);
        var remote = (9_000L << 16) + 3;
        clock.Observe(remote);
        Assert.Equal(remote, clock.Last);
        Assert.True(clock.Next(100) > remote);
        // Observing an older timestamp does not lower the clock.
        var last = clock.Last;
        clock.Observe(5);
        Assert.Equal(last, clock.Last);
    }

    [Fact]
    public void Version_text_shows_physical_time_logical_count_and_node()
    {
        Assert.Equal("1000.2@3", new Version((1000L << 16) + 2, 3).ToString());
    }
}
