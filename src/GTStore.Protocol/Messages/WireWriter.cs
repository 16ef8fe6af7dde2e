using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace GTStore.Protocol;

/// <summary>Little-endian primitive writer over a growable buffer; lengths are u32 prefixes.</summary>
public sealed class WireWriter(ArrayBufferWriter<byte> buffer)
{
    public ArrayBufferWriter<byte> Buffer { get; } = buffer;

    public void Byte(byte v)
    {
        Buffer.GetSpan(1)[0] = v;
        Buffer.Advance(1);
    }

    public void Bool(bool v) => Byte(v ? (byte)1 : (byte)0);

    public void I32(int v)
    {
        BinaryPrimitives.WriteInt32LittleEndian(Buffer.GetSpan(4), v);
        Buffer.Advance(4);
    }

    public void I64(long v)
    {
        BinaryPrimitives.WriteInt64LittleEndian(Buffer.GetSpan(8), v);
        Buffer.Advance(8);
    }

    public void U64(ulong v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(Buffer.GetSpan(8), v);
        Buffer.Advance(8);
    }

    public void Bytes(ReadOnlySpan<byte> v)
    {
        I32(v.Length);
        Buffer.Write(v);
    }

    /// <summary>Null is written as length -1.</summary>
    public void NullableBytes(byte[]? v)
    {
        if (v is null)
            I32(-1);
        else
            Bytes(v);
    }

    public void String(string v) => Bytes(Encoding.UTF8.GetBytes(v));

    public void NullableString(string? v) => NullableBytes(v is null ? null : Encoding.UTF8.GetBytes(v));
}
