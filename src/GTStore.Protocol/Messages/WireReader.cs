using System.Buffers.Binary;
using System.Text;

namespace GTStore.Protocol;

/// <summary>
/// Little-endian primitive reader over one frame's payload. Every read checks the bytes left and
/// every length against the frame, so no input can read out of bounds or allocate unboundedly.
/// </summary>
public ref struct WireReader(ReadOnlySpan<byte> payload)
{
    private ReadOnlySpan<byte> _rest = payload;

    public readonly int Remaining => _rest.Length;

    /// <param name="suffix">Appended to <paramref name="what"/> in an error only, so that a length or
    /// a count, which precedes every array on the hot path, is read without building its name.</param>
    private ReadOnlySpan<byte> Take(int count, string what, string suffix = "")
    {
        if (count < 0 || count > _rest.Length)
            throw new ProtocolException($"truncated message: {what}{suffix} needs {count} bytes, {_rest.Length} left");
        var s = _rest[..count];
        _rest = _rest[count..];
        return s;
    }

    public byte Byte(string what) => Take(1, what)[0];

    public bool Bool(string what) => Byte(what) switch
    {
        0 => false,
        1 => true,
        var b => throw new ProtocolException($"{what} must be 0 or 1, got {b}"),
    };

    public int I32(string what) => BinaryPrimitives.ReadInt32LittleEndian(Take(4, what));

    private int I32(string what, string suffix) => BinaryPrimitives.ReadInt32LittleEndian(Take(4, what, suffix));

    public long I64(string what) => BinaryPrimitives.ReadInt64LittleEndian(Take(8, what));

    public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));

    public byte[] Bytes(string what)
    {
        var length = I32(what, " length");
        if (length < 0)
            throw new ProtocolException($"{what} length must not be negative, got {length}");
        return Take(length, what).ToArray();
    }

    public byte[]? NullableBytes(string what)
    {
        var length = I32(what, " length");
        if (length == -1)
            return null;
        if (length < 0)
            throw new ProtocolException($"{what} length must be -1 (null) or positive, got {length}");
        return Take(length, what).ToArray();
    }

    public string String(string what) => Decode(Bytes(what), what);

    public string? NullableString(string what) => NullableBytes(what) is { } b ? Decode(b, what) : null;

    /// <summary>A count of items that each take at least <paramref name="minItemBytes"/> bytes.</summary>
    public int Count(string what, int minItemBytes)
    {
        var n = I32(what, " count");
        if (n < 0 || (long)n * minItemBytes > _rest.Length)
            throw new ProtocolException($"{what} count {n} does not fit in the {_rest.Length} bytes left");
        return n;
    }

    public readonly void End(string what)
    {
        if (_rest.Length != 0)
            throw new ProtocolException($"{what} has {_rest.Length} unexpected trailing bytes");
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    private static string Decode(byte[] bytes, string what)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (ArgumentException)
        {
            throw new ProtocolException($"{what} is not valid UTF-8");
        }
    }
}
