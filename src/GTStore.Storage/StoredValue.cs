using System.Buffers.Binary;
using GTStore.Core;

namespace GTStore.Storage;

/// <summary>
/// How the durable engine stores a key and a value, in RocksDB and in its write log alike. A
/// stored key is the 8-byte big-endian ring hash followed by the key, so a partition is one
/// contiguous range of the keyspace. A stored value is the version's timestamp (i64 LE) and node
/// (i32 LE), a tombstone flag byte, then the value bytes.
/// </summary>
internal static class StoredValue
{
    public const int HashBytes = 8;

    /// <summary>Timestamp (8 bytes), node (4), tombstone flag (1).</summary>
    public const int HeaderBytes = 8 + 4 + 1;

    private const int TombstoneByte = 12;

    public static byte[] Key(ulong hash, ReadOnlySpan<byte> key)
    {
        var k = new byte[HashBytes + key.Length];
        WriteKey(k, hash, key);
        return k;
    }

    public static void WriteKey(Span<byte> into, ulong hash, ReadOnlySpan<byte> key)
    {
        BinaryPrimitives.WriteUInt64BigEndian(into, hash);
        key.CopyTo(into[HashBytes..]);
    }

    public static int LengthOf(VersionedValue v) => HeaderBytes + (v.Value?.Length ?? 0);

    /// <summary>Writes <paramref name="v"/> at the start of <paramref name="into"/>; returns the bytes written.</summary>
    public static Span<byte> Encode(Span<byte> into, VersionedValue v)
    {
        var bytes = into[..LengthOf(v)];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, v.Version.Timestamp);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[8..], v.Version.Node);
        bytes[TombstoneByte] = v.IsTombstone ? (byte)1 : (byte)0;
        v.Value?.CopyTo(bytes[HeaderBytes..]);
        return bytes;
    }

    public static VersionedValue Decode(ReadOnlySpan<byte> bytes) =>
        new(VersionOf(bytes), IsTombstone(bytes) ? null : bytes[HeaderBytes..].ToArray());

    /// <summary>Whether a stored value (its header checked by <see cref="VersionOf"/>) is a tombstone.</summary>
    public static bool IsTombstone(ReadOnlySpan<byte> bytes) => bytes[TombstoneByte] == 1;

    public static Core.Version VersionOf(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < HeaderBytes)
            throw new InvalidDataException($"stored value of {bytes.Length} bytes is shorter than its {HeaderBytes}-byte header");
        return new Core.Version(BinaryPrimitives.ReadInt64LittleEndian(bytes), BinaryPrimitives.ReadInt32LittleEndian(bytes[8..]));
    }
}
