using CsCheck;

namespace GTStore.Core.Tests;

/// <summary>
/// The pure parts of anti-entropy (NodeMachine.AntiEntropy.cs): a range cut into buckets, so a
/// summary can take whole buckets from an engine's digests, and into slices, so the entries of the
/// slices that differ can be read without reading the rest of the range.
/// </summary>
public sealed class AntiEntropyTests
{
    private const int Shift = 64 - AntiEntropy.BucketBits;

    // Hashes at the ring's ends, at its middle and at bucket boundaries, where the arithmetic wraps or cuts.
    private static readonly Gen<ulong> GenHash = Gen.OneOf(
        Gen.ULong,
        Gen.ULong[0, 4],
        Gen.ULong[ulong.MaxValue - 4, ulong.MaxValue],
        Gen.Select(Gen.ULong[0, AntiEntropy.Buckets - 1], Gen.Long[-2, 2], (b, d) => unchecked((b << Shift) + (ulong)d)));

    /// <summary>A range between two bucket boundaries, as a ring whose tokens end slot arcs has.</summary>
    private static readonly Gen<HashRange> GenAlignedRange = Gen.Select(Gen.ULong[0, AntiEntropy.Buckets - 1], Gen.ULong[0, AntiEntropy.Buckets - 1],
        (s, e) => new HashRange(unchecked((s << Shift) - 1), unchecked((e << Shift) - 1)));

    private static readonly Gen<HashRange> GenRange = Gen.OneOf(Gen.Select(GenHash, GenHash, (s, e) => new HashRange(s, e)), GenAlignedRange);

    [Fact]
    public void Bucket_parts_cover_the_range_in_order_each_within_its_bucket()
    {
        GenRange.Sample(range =>
        {
            var parts = AntiEntropy.BucketParts(range).ToList();
            Assert.Equal(range.Start, parts[0].Part.Start);
            Assert.Equal(range.End, parts[^1].Part.End);
            for (var i = 1; i < parts.Count; i++)
                Assert.Equal(parts[i - 1].Part.End, parts[i].Part.Start);
            Assert.Equal(range.Width, parts.Aggregate(UInt128.Zero, (sum, p) => sum + p.Part.Width));
            foreach (var (bucket, part, whole) in parts)
            {
                Assert.False(part.IsFullRing);
                Assert.Equal(bucket, AntiEntropy.BucketOf(unchecked(part.Start + 1)));
                Assert.Equal(bucket, AntiEntropy.BucketOf(part.End));
                Assert.Equal(whole, part.Width == (UInt128)1 << Shift);
            }
        }, iter: 300);
    }

    [Fact]
    public void A_full_ring_that_starts_inside_a_bucket_visits_it_at_both_ends()
    {
        var start = (5UL << Shift) + 100;
        var parts = AntiEntropy.BucketParts(new HashRange(start, start)).ToList();
        Assert.Equal(AntiEntropy.Buckets + 1, parts.Count);
        Assert.Equal((5, false), (parts[0].Bucket, parts[0].Whole));
        Assert.Equal((5, false), (parts[^1].Bucket, parts[^1].Whole));
        Assert.All(parts.Skip(1).SkipLast(1), p => Assert.True(p.Whole));
    }

    [Fact]
    public void Slice_ranges_hold_exactly_the_hashes_SliceOf_puts_in_them()
    {
        Gen.Select(GenRange, GenHash).Sample((range, hash) =>
        {
            var slices = Enumerable.Range(0, AntiEntropy.Leaves).Select(s => AntiEntropy.SliceRange(range, s)).ToList();
            Assert.Equal(range.Width, slices.Aggregate(UInt128.Zero, (sum, s) => sum + (s?.Width ?? 0)));
            if (!range.Contains(hash))
                return;
            var slice = AntiEntropy.SliceOf(range, hash);
            for (var s = 0; s < AntiEntropy.Leaves; s++)
                Assert.Equal(s == slice, slices[s]?.Contains(hash) ?? false);
        }, iter: 300);
    }

    [Fact]
    public void A_range_on_bucket_boundaries_is_sliced_on_them_and_summarised_without_reading()
    {
        Gen.Select(GenAlignedRange, GenHash.Array[0, 30]).Sample((range, hashes) =>
        {
            for (var s = 0; s < AntiEntropy.Leaves; s++)
            {
                if (AntiEntropy.SliceRange(range, s) is not { } slice)
                    continue;
                Assert.Equal(0UL, unchecked(slice.Start + 1) & ((1UL << Shift) - 1));
                Assert.Equal(0UL, unchecked(slice.End + 1) & ((1UL << Shift) - 1));
            }
            var store = new FakeStore { KeepsBucketSummaries = true };
            foreach (var h in hashes)
                store.Put(h, [1], new VersionedValue(new Version(1, 1), [2]));
            var summary = AntiEntropy.Summarise(store, range, out var read);
            Assert.Equal(0, read);
            var expected = new ulong[AntiEntropy.Leaves];
            foreach (var h in hashes.Distinct().Where(range.Contains))
                expected[AntiEntropy.SliceOf(range, h)] ^= AntiEntropy.EntryDigest([1], new Version(1, 1));
            Assert.Equal(expected, summary);
        }, iter: 300);
    }

    [Fact]
    public void The_parts_of_slices_cover_exactly_those_slices_and_digest_their_entries()
    {
        Gen.Select(GenRange, Gen.Int[0, AntiEntropy.Leaves - 1].Array[1, 3], GenHash.Array[0, 30], Gen.Bool).Sample((range, picked, hashes, kept) =>
        {
            var slices = picked.Distinct().Order().ToList();
            var parts = AntiEntropy.PartsOf(range, slices);
            var sliceRanges = slices.Select(s => AntiEntropy.SliceRange(range, s)).OfType<HashRange>().ToList();
            foreach (var part in parts)
                Assert.Contains(sliceRanges, s => part.IsCoveredBy([s]));
            foreach (var slice in sliceRanges)
                Assert.True(slice.IsCoveredBy(parts), $"slice {slice} not covered by its parts");
            var store = new FakeStore { KeepsBucketSummaries = kept };
            foreach (var h in hashes)
                store.Put(h, [1], new VersionedValue(new Version(1, 1), [2]));
            var digests = AntiEntropy.DigestsOf(store, parts, out var read);
            for (var i = 0; i < parts.Count; i++)
            {
                var expected = hashes.Distinct().Where(parts[i].Contains)
                    .Aggregate(0UL, (d, _) => d ^ AntiEntropy.EntryDigest([1], new Version(1, 1)));
                Assert.Equal(expected, digests[i]);
            }
            if (!kept)
                Assert.Equal(hashes.Distinct().Count(h => parts.Any(p => p.Contains(h))), read);
        }, iter: 300);
    }

    [Fact]
    public void The_parts_of_many_slices_stop_at_the_limit_on_a_slice_boundary()
    {
        var range = new HashRange(12345, 12345); // The full ring, not on bucket boundaries.
        var slices = Enumerable.Range(0, AntiEntropy.Leaves).ToList();
        var parts = AntiEntropy.PartsOf(range, slices);
        Assert.InRange(parts.Count, Limits.SyncPartsMax - AntiEntropy.Buckets / AntiEntropy.Leaves - 1, Limits.SyncPartsMax);
        var covered = slices.TakeWhile(s => AntiEntropy.SliceRange(range, s)!.Value.IsCoveredBy(parts)).Count();
        Assert.True(covered is > 0 and < AntiEntropy.Leaves);
        var first = AntiEntropy.SliceRange(range, covered)!.Value; // the first slice left out: none of it in part
        Assert.DoesNotContain(parts, p => first.Intersect(p).Any());
    }
}
