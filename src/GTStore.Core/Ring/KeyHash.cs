using System.IO.Hashing;

namespace GTStore.Core;

/// <summary>
/// Places keys on the 64-bit ring: the top 14 bits are the key's Redis Cluster slot
/// (<see cref="KeySlot"/>), the low 50 bits the top of its XXH3-64 hash. Each slot thus owns one
/// contiguous arc of the ring, and a slot's arc lies within one range except where a token cuts
/// it, so a node can tell Redis Cluster clients which node replicates each slot
/// (<see cref="Ring.SlotRanges"/>), while keys within a slot still spread over its arc. The
/// algorithm and seed are part of the on-disk and on-wire format: changing either moves every key,
/// so golden-vector tests freeze them.
/// </summary>
public static class KeyHash
{
    /// <summary>XXH3 seed; frozen.</summary>
    public const long Seed = 0x4754_5374_6F72_6531; // "GTStore1"

    /// <summary>Bits of a ring position below the slot.</summary>
    public const int SlotShift = 50;

    public static ulong Of(ReadOnlySpan<byte> key) =>
        ((ulong)KeySlot.Of(key) << SlotShift) | (XxHash3.HashToUInt64(key, Seed) >> (64 - SlotShift));

    /// <summary>The slot whose arc holds ring position <paramref name="hash"/>.</summary>
    public static int SlotOf(ulong hash) => (int)(hash >> SlotShift);

    /// <summary>The middle of slot <paramref name="slot"/>'s arc.</summary>
    public static ulong SlotMidpoint(int slot) => ((ulong)slot << SlotShift) | (1UL << (SlotShift - 1));
}
