namespace GTStore.Core;

/// <summary>
/// The arc (Start, End] of the ring, walking clockwise and wrapping past ulong.MaxValue.
/// Start == End denotes the whole ring (a ring with one token owns everything).
/// A range's data is one partition: the unit stored, streamed and repaired.
/// </summary>
public readonly record struct HashRange(ulong Start, ulong End)
{
    public bool IsFullRing => Start == End;

    public bool Contains(ulong hash) =>
        IsFullRing || (Start < End ? hash > Start && hash <= End : hash > Start || hash <= End);

    /// <summary>Number of hash positions covered; the full ring is 2^64.</summary>
    public UInt128 Width => IsFullRing ? (UInt128)1 << 64 : (UInt128)unchecked(End - Start);

    /// <summary>
    /// The range as at most two linear, inclusive [Low, High] segments in ring order starting
    /// just after Start, for engines whose keys are sorted by hash.
    /// </summary>
    public IEnumerable<(ulong Low, ulong High)> Segments()
    {
        if (IsFullRing)
        {
            if (Start == ulong.MaxValue)
            {
                yield return (0, ulong.MaxValue);
                yield break;
            }
            yield return (Start + 1, ulong.MaxValue);
            yield return (0, Start);
        }
        else if (Start < End)
        {
            yield return (Start + 1, End);
        }
        else
        {
            if (Start != ulong.MaxValue)
                yield return (Start + 1, ulong.MaxValue);
            yield return (0, End);
        }
    }

    /// <summary>The parts of <paramref name="other"/> inside this range: none, one or two arcs.</summary>
    public IEnumerable<HashRange> Intersect(HashRange other)
    {
        foreach (var (low, high) in Within(other))
            yield return low == 0 && high == FullWidth ? this : new HashRange(unchecked(Start + (ulong)low), unchecked(Start + (ulong)high));
    }

    /// <summary>Whether every hash of this range lies in at least one of <paramref name="arcs"/>.</summary>
    public bool IsCoveredBy(IEnumerable<HashRange> arcs)
    {
        UInt128 covered = 0; // (0, covered] of this range, in offsets from Start, is covered.
        foreach (var (low, high) in arcs.SelectMany(Within).OrderBy(p => p.Low))
        {
            if (low > covered)
                return false;
            covered = UInt128.Max(covered, high);
        }
        return covered >= Width;
    }

    private static readonly UInt128 FullWidth = (UInt128)1 << 64;

    /// <summary>
    /// <paramref name="other"/> clipped to this range, as arcs (Low, High] of offsets from Start:
    /// this range is (0, Width], and offset 2^64 is Start itself.
    /// </summary>
    private IEnumerable<(UInt128 Low, UInt128 High)> Within(HashRange other)
    {
        var width = Width;
        IEnumerable<(UInt128, UInt128)> pieces;
        if (other.IsFullRing)
        {
            pieces = [(0, FullWidth)];
        }
        else
        {
            UInt128 low = unchecked(other.Start - Start), high = unchecked(other.End - Start);
            // An arc that passes Start is split there.
            pieces = low < high ? [(low, high)] : [(low, FullWidth), (0, high)];
        }
        foreach (var (low, high) in pieces)
        {
            var clipped = UInt128.Min(high, width);
            if (low < clipped)
                yield return (low, clipped);
        }
    }

    public override string ToString() => $"({Start:x16}, {End:x16}]";
}
