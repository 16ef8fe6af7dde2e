using CsCheck;

namespace GTStore.Core.Tests;

/// <summary>
/// DESIGN.md Words: "range: the arc (previous token, token]; the data of one range is one partition".
/// HashRange.cs: "Start == End denotes the whole ring".
/// </summary>
public sealed class HashRangeTests
{
    private static readonly Gen<ulong> GenHash = Gen.OneOf(
        Gen.ULong,
        Gen.ULong[0, 8],
        Gen.ULong[ulong.MaxValue - 8, ulong.MaxValue],
        Gen.ULong[(1UL << 63) - 4, (1UL << 63) + 4]);

    [Fact]
    public void Non_wrapping_range_contains_its_end_but_not_its_start()
    {
        var r = new HashRange(10, 20);
        Assert.False(r.Contains(10));
        Assert.True(r.Contains(11));
        Assert.True(r.Contains(20));
        Assert.False(r.Contains(21));
        Assert.False(r.Contains(0));
        Assert.False(r.Contains(ulong.MaxValue));
        Assert.False(r.IsFullRing);
    }

    [Fact]
    public void Wrapping_range_runs_past_the_top_of_the_ring_to_its_end()
    {
        var r = new HashRange(ulong.MaxValue - 5, 5);
        Assert.False(r.Contains(ulong.MaxValue - 5));
        Assert.True(r.Contains(ulong.MaxValue - 4));
        Assert.True(r.Contains(ulong.MaxValue));
        Assert.True(r.Contains(0));
        Assert.True(r.Contains(5));
        Assert.False(r.Contains(6));
        Assert.False(r.Contains(1UL << 63));
    }

    [Fact]
    public void Range_ending_at_zero_wraps_to_contain_zero_only_past_the_top()
    {
        var r = new HashRange(ulong.MaxValue - 1, 0);
        Assert.True(r.Contains(ulong.MaxValue));
        Assert.True(r.Contains(0));
        Assert.False(r.Contains(1));
        Assert.False(r.Contains(ulong.MaxValue - 1));
        Assert.Equal((UInt128)2, r.Width);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(12345UL)]
    [InlineData(ulong.MaxValue)]
    public void Range_with_start_equal_to_end_is_the_whole_ring(ulong at)
    {
        var r = new HashRange(at, at);
        Assert.True(r.IsFullRing);
        foreach (var h in new[] { 0UL, 1UL, at, unchecked(at + 1), unchecked(at - 1), ulong.MaxValue, 1UL << 63 })
            Assert.True(r.Contains(h), $"full ring {r} must contain {h:x16}");
        Assert.Equal((UInt128)1 << 64, r.Width);
    }

    [Fact]
    public void Width_counts_the_hash_positions_of_the_range()
    {
        Assert.Equal((UInt128)10, new HashRange(10, 20).Width);
        Assert.Equal((UInt128)1, new HashRange(10, 11).Width);
        Assert.Equal((UInt128)11, new HashRange(ulong.MaxValue - 5, 5).Width);
        Assert.Equal((UInt128)ulong.MaxValue, new HashRange(0, ulong.MaxValue).Width);
        Assert.Equal((UInt128)ulong.MaxValue, new HashRange(1, 0).Width);
    }

    [Fact]
    public void Width_equals_the_number_of_contained_hashes_near_the_wrap()
    {
        // Exhaustive over a small window of the ring around the wrap point.
        var window = Enumerable.Range(-6, 12).Select(d => unchecked((ulong)d)).ToArray();
        foreach (var s in window)
        {
            foreach (var e in window)
            {
                if (s == e)
                    continue;
                var r = new HashRange(s, e);
                if (r.Width > 12)
                    continue;
                var count = window.Count(r.Contains);
                Assert.True((UInt128)count == r.Width, $"{r}: width {r.Width}, contains {count}");
            }
        }
    }

    [Fact]
    public void A_hash_is_in_the_range_iff_it_lies_in_exactly_one_of_its_segments()
    {
        // HashRange.Segments: "The range as at most two linear, inclusive [Low, High] segments in
        // ring order starting just after Start".
        Gen.Select(GenHash, GenHash, GenHash).Sample((start, end, hash) =>
        {
            var r = new HashRange(start, end);
            var segments = r.Segments().ToList();
            var inSegments = segments.Count(s => hash >= s.Low && hash <= s.High);
            Assert.True(inSegments <= 1, $"{r}: {hash:x16} lies in {inSegments} segments");
            Assert.Equal(r.Contains(hash), inSegments == 1);
        }, iter: 2000);
    }

    [Fact]
    public void Segments_are_in_ring_order_after_start_and_sum_to_the_width()
    {
        Gen.Select(GenHash, GenHash).Sample((start, end) =>
        {
            var r = new HashRange(start, end);
            var segments = r.Segments().ToList();
            Assert.InRange(segments.Count, 1, 2);
            UInt128 total = 0;
            foreach (var (low, high) in segments)
            {
                Assert.True(low <= high, $"{r}: segment [{low:x16}, {high:x16}] is inverted");
                total += (UInt128)(high - low) + 1;
            }
            Assert.Equal(r.Width, total);
            Assert.Equal(unchecked(start + 1), segments[0].Low);
            Assert.Equal(end, segments[^1].High);
            if (segments.Count == 2)
            {
                Assert.Equal(ulong.MaxValue, segments[0].High);
                Assert.Equal(0UL, segments[1].Low);
            }
        }, iter: 2000);
    }
}
