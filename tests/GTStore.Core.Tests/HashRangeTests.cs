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

    private static readonly Gen<HashRange> GenRange = Gen.Select(GenHash, GenHash, (s, e) => new HashRange(s, e));

    /// <summary>Hashes where membership in any of the ranges can change: each start, just after it, each end, just after it.</summary>
    private static IEnumerable<ulong> Edges(IEnumerable<HashRange> ranges) =>
        ranges.SelectMany(r => new[] { r.Start, unchecked(r.Start + 1), r.End, unchecked(r.End + 1) }).Concat([0UL, ulong.MaxValue]);

    [Fact]
    public void Intersect_holds_exactly_the_hashes_in_both_ranges()
    {
        Gen.Select(GenRange, GenRange, GenHash).Sample((a, b, extra) =>
        {
            var parts = a.Intersect(b).ToList();
            Assert.InRange(parts.Count, 0, 2);
            foreach (var h in Edges([a, b]).Append(extra))
            {
                var inParts = parts.Count(p => p.Contains(h));
                Assert.True(inParts <= 1, $"{a} ∩ {b}: {h:x16} lies in {inParts} parts");
                Assert.True((a.Contains(h) && b.Contains(h)) == (inParts == 1), $"{a} ∩ {b} = [{string.Join(", ", parts)}]: wrong for {h:x16}");
            }
        }, iter: 5000);
    }

    [Fact]
    public void A_range_intersected_with_itself_or_the_whole_ring_is_itself()
    {
        Gen.Select(GenRange, GenHash).Sample((r, at) =>
        {
            Assert.Equal([r], r.Intersect(r).ToList());
            Assert.Equal([r], r.Intersect(new HashRange(at, at)).ToList());
        }, iter: 2000);
    }

    [Fact]
    public void A_range_is_covered_iff_every_hash_of_it_lies_in_one_of_the_arcs()
    {
        Gen.Select(GenRange, GenRange.Array[0, 4], GenHash).Sample((r, arcs, extra) =>
        {
            var covered = r.IsCoveredBy(arcs);
            // Membership changes only at the edges, so they decide coverage.
            var holes = Edges(arcs.Append(r)).Append(extra).Where(h => r.Contains(h) && !arcs.Any(a => a.Contains(h))).ToList();
            Assert.True(covered == (holes.Count == 0), $"{r} by [{string.Join(", ", arcs)}]: covered {covered}, holes at [{string.Join(", ", holes.Select(h => h.ToString("x16")))}]");
        }, iter: 5000);
    }

    [Fact]
    public void A_range_split_into_pieces_is_covered_by_them_and_not_by_all_but_one()
    {
        Gen.Select(GenHash, Gen.ULong[1, 1UL << 40].Array[2, 5]).Sample((start, steps) =>
        {
            var bounds = new List<ulong> { start };
            foreach (var step in steps)
                bounds.Add(unchecked(bounds[^1] + step));
            var pieces = bounds.Zip(bounds.Skip(1), (s, e) => new HashRange(s, e)).ToList();
            var whole = new HashRange(bounds[0], bounds[^1]);
            Assert.True(whole.IsCoveredBy(pieces));
            Assert.True(whole.IsCoveredBy(Enumerable.Reverse(pieces)));
            for (var skip = 0; skip < pieces.Count; skip++)
                Assert.False(whole.IsCoveredBy(pieces.Where((_, i) => i != skip)), $"{whole} covered without {pieces[skip]}");
        }, iter: 1000);
    }
}
