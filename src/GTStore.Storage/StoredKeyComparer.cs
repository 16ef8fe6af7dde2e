using System.Buffers.Binary;

namespace GTStore.Storage;

/// <summary>Equality of stored keys (8-byte ring hash, then the key): the ring hash is already a good hash code.</summary>
internal sealed class StoredKeyComparer : IEqualityComparer<byte[]>
{
    public static readonly StoredKeyComparer Instance = new();

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] k) => k.Length >= 8 ? (int)BinaryPrimitives.ReadUInt64BigEndian(k) ^ (int)(BinaryPrimitives.ReadUInt64BigEndian(k) >> 32) : k.Length;
}
