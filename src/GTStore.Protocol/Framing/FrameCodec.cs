using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using GTStore.Core;

namespace GTStore.Protocol;

/// <summary>
/// Encodes and decodes frames: <c>u32 LE BodyLength | u16 LE Type | u64 LE RequestId | payload</c>,
/// with <c>10 &lt;= BodyLength &lt;= Limits.FrameBytesMax</c>. The wire format is frozen.
/// </summary>
public static class FrameCodec
{
    /// <summary>Bytes of the length prefix.</summary>
    public const int LengthPrefixBytes = sizeof(uint);

    /// <summary>Bytes of the body header (type + request id) that every body starts with.</summary>
    public const int BodyHeaderBytes = sizeof(ushort) + sizeof(ulong);

    /// <summary>Largest payload one frame carries: the body limit minus the body header.</summary>
    public const int PayloadBytesMax = Limits.FrameBytesMax - BodyHeaderBytes;

    /// <summary>
    /// Reads one frame. Returns false, leaving <paramref name="reader"/> where it was, when the
    /// whole frame has not arrived yet. Throws <see cref="ProtocolException"/> as soon as the
    /// length prefix is malformed, without waiting for the body it announces. The returned
    /// payload is a fresh array, so it outlives the buffer being read.
    /// </summary>
    public static bool TryReadFrame(ref SequenceReader<byte> reader, out Frame frame)
    {
        frame = default;
        var probe = reader;
        if (!probe.TryReadLittleEndian(out int lengthBits))
        {
            return false;
        }

        uint bodyBytes = unchecked((uint)lengthBits);
        ValidateBodyLength(bodyBytes);
        if (probe.Remaining < bodyBytes)
        {
            return false;
        }

        probe.TryReadLittleEndian(out short typeBits);
        probe.TryReadLittleEndian(out long requestIdBits);
        var payload = new byte[bodyBytes - BodyHeaderBytes];
        probe.TryCopyTo(payload);
        reader.Advance(LengthPrefixBytes + bodyBytes);
        frame = new Frame(unchecked((ushort)typeBits), unchecked((ulong)requestIdBits), payload);
        return true;
    }

    /// <summary>Appends one frame to <paramref name="output"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The payload exceeds <see cref="PayloadBytesMax"/>.</exception>
    public static void Write(IBufferWriter<byte> output, ushort type, ulong requestId, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(output);
        int bodyBytes = BodyHeaderBytes + CheckPayloadLength(payload.Length);
        const int headerBytes = LengthPrefixBytes + BodyHeaderBytes;
        var header = output.GetSpan(headerBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)bodyBytes);
        BinaryPrimitives.WriteUInt16LittleEndian(header[LengthPrefixBytes..], type);
        BinaryPrimitives.WriteUInt64LittleEndian(header[(LengthPrefixBytes + sizeof(ushort))..], requestId);
        output.Advance(headerBytes);
        if (!payload.IsEmpty)
        {
            output.Write(payload);
        }
    }

    /// <summary>Bytes one frame with a payload of <paramref name="payloadLength"/> bytes takes on the wire.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The payload length is negative or exceeds <see cref="PayloadBytesMax"/>.</exception>
    public static int EncodedLength(int payloadLength) =>
        LengthPrefixBytes + BodyHeaderBytes + CheckPayloadLength(payloadLength);

    /// <summary>
    /// The payload of a <see cref="FrameTypes.ProtocolError"/> frame: <paramref name="message"/> in
    /// UTF-8, cut at a character boundary to at most <see cref="Limits.ErrorMessageBytesMax"/> bytes.
    /// </summary>
    public static byte[] EncodeErrorMessage(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var bytes = Encoding.UTF8.GetBytes(message);
        if (bytes.Length <= Limits.ErrorMessageBytesMax)
        {
            return bytes;
        }

        int cut = Limits.ErrorMessageBytesMax;
        while (cut > 0 && (bytes[cut] & 0b1100_0000) == 0b1000_0000)
        {
            cut--;
        }

        return bytes[..cut];
    }

    /// <summary>
    /// The text of a <see cref="FrameTypes.ProtocolError"/> payload. A peer may send anything, so
    /// the text is capped at <see cref="Limits.ErrorMessageBytesMax"/> bytes and invalid UTF-8 is
    /// replaced rather than rejected.
    /// </summary>
    public static string DecodeErrorMessage(ReadOnlySpan<byte> payload)
    {
        var capped = payload.Length <= Limits.ErrorMessageBytesMax ? payload : payload[..Limits.ErrorMessageBytesMax];
        return Encoding.UTF8.GetString(capped);
    }

    private static void ValidateBodyLength(uint bodyBytes)
    {
        if (bodyBytes < BodyHeaderBytes)
        {
            throw new ProtocolException(
                $"frame body of {bodyBytes} bytes is shorter than the {BodyHeaderBytes}-byte body header (type + request id)");
        }

        if (bodyBytes > Limits.FrameBytesMax)
        {
            throw new ProtocolException(
                $"frame body of {bodyBytes} bytes exceeds the limit of {Limits.FrameBytesMax} bytes");
        }
    }

    private static int CheckPayloadLength(int payloadLength)
    {
        if (payloadLength < 0 || payloadLength > PayloadBytesMax)
        {
            throw new ArgumentOutOfRangeException(
                nameof(payloadLength),
                payloadLength,
                $"frame payload of {payloadLength} bytes exceeds the limit of {PayloadBytesMax} bytes "
                + $"(Limits.FrameBytesMax = {Limits.FrameBytesMax} minus the {BodyHeaderBytes}-byte body header)");
        }

        return payloadLength;
    }
}
