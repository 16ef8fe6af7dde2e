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

    public override string ToString() => $"({Start:x16}, {End:x16}]";
}
