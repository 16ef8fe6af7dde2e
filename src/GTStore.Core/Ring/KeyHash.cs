using System.IO.Hashing;

namespace GTStore.Core;

/// <summary>
/// Places keys on the 64-bit ring. The algorithm (XXH3-64) and seed are part of the on-disk and
/// on-wire format: changing either moves every key, so golden-vector tests freeze them.
/// </summary>
public static class KeyHash
{
    /// <summary>XXH3 seed; frozen.</summary>
    public const long Seed = 0x4754_5374_6F72_6531; // "GTStore1"

    public static ulong Of(ReadOnlySpan<byte> key) => XxHash3.HashToUInt64(key, Seed);
}
