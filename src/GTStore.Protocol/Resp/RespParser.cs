using System.Buffers;

namespace GTStore.Protocol.Resp;

/// <summary>
/// Reads Redis requests (RESP2): multibulk arrays of bulk strings (<c>*2\r\n$3\r\nGET\r\n$1\r\nk\r\n</c>),
/// as every client library sends, and inline commands (<c>PING\r\n</c>), as people type them
/// into telnet or nc, split on spaces with Redis's quoting rules.
/// Immutable and thread-safe: one instance serves every connection.
/// </summary>
/// <remarks>
/// Every size is capped before anything is buffered for it: a bulk length over
/// <see cref="BulkBytesMax"/>, an array over <see cref="ArgsMax"/> elements or a request whose
/// announced lengths pass <see cref="RequestBytesMax"/> is rejected from its header alone, without
/// waiting for the body it announces. Messages follow Redis's wording (the server prefixes
/// <c>ERR Protocol error: </c>) and add the detail.
/// </remarks>
public sealed class RespParser
{
    /// <summary>Most arguments in one multibulk request, as Redis (1024*1024).</summary>
    public const int ArgsMaxDefault = 1024 * 1024;

    /// <summary>Longest inline request line, without its newline, as Redis (64 KiB).</summary>
    public const int InlineBytesMax = 64 * 1024;

    /// <summary>Default cap on one whole request on the wire, headers included (256 MiB).</summary>
    public const long RequestBytesMaxDefault = 256L * 1024 * 1024;

    /// <summary>
    /// Longest length field between <c>*</c>/<c>$</c> and CR: a sign and 18 digits. Any valid
    /// length is far shorter, and 18 digits cannot overflow a <see cref="long"/>.
    /// </summary>
    private const int LengthCharsMax = 19;

    /// <param name="bulkBytesMax">Longest bulk string accepted, in bytes.</param>
    /// <param name="requestBytesMax">Longest request accepted, in bytes on the wire.</param>
    /// <param name="argsMax">Most arguments in one request.</param>
    public RespParser(int bulkBytesMax, long requestBytesMax = RequestBytesMaxDefault, int argsMax = ArgsMaxDefault)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bulkBytesMax);
        ArgumentOutOfRangeException.ThrowIfLessThan(requestBytesMax, (long)bulkBytesMax);
        ArgumentOutOfRangeException.ThrowIfLessThan(argsMax, 1);
        BulkBytesMax = bulkBytesMax;
        RequestBytesMax = requestBytesMax;
        ArgsMax = argsMax;
    }

    /// <summary>Longest bulk string accepted, in bytes.</summary>
    public int BulkBytesMax { get; }

    /// <summary>Longest multibulk request accepted, in bytes on the wire (headers, data and CRLFs).</summary>
    public long RequestBytesMax { get; }

    /// <summary>Most arguments (name included) in one multibulk request.</summary>
    public int ArgsMax { get; }

    /// <summary>
    /// Reads one request. Returns false, leaving <paramref name="reader"/> where it was, when the
    /// whole request has not arrived yet. Throws <see cref="ProtocolException"/> with a precise
    /// message as soon as the bytes cannot be a valid request. On true the reader is past the
    /// request; an empty request (<see cref="RespCommand.IsEmpty"/>) is returned rather than
    /// skipped so that its bytes are consumed.
    /// </summary>
    public bool TryReadCommand(ref SequenceReader<byte> reader, out RespCommand command)
    {
        var progress = default(RespParseProgress);
        return TryReadCommand(ref reader, out command, ref progress);
    }

    /// <summary>
    /// As <see cref="TryReadCommand(ref SequenceReader{byte}, out RespCommand)"/>, but remembers in
    /// <paramref name="progress"/> how much of a partly arrived request was already checked, so
    /// that a connection receiving one large request in many reads checks each byte once rather
    /// than once per read. Pass the same value with a reader at the same request until it returns
    /// true or throws; it is reset then.
    /// </summary>
    public bool TryReadCommand(ref SequenceReader<byte> reader, out RespCommand command, ref RespParseProgress progress)
    {
        command = default;
        if (!reader.TryPeek(out byte first))
        {
            return false;
        }

        try
        {
            bool complete = first == (byte)'*'
                ? TryReadMultiBulk(ref reader, out command, ref progress)
                : TryReadInline(ref reader, out command);
            if (complete)
            {
                progress = default;
            }

            return complete;
        }
        catch (ProtocolException)
        {
            progress = default;
            throw;
        }
    }

    private bool TryReadMultiBulk(ref SequenceReader<byte> reader, out RespCommand command, ref RespParseProgress progress)
    {
        command = default;
        var probe = reader;
        probe.Advance(1);
        if (!TryReadLength(ref probe, "multibulk", out long count))
        {
            return false;
        }

        if (count is 0 or -1)
        {
            reader = probe;
            return true;
        }

        if (count < 0 || count > ArgsMax)
        {
            throw new ProtocolException($"invalid multibulk length: {count} (allowed 1..{ArgsMax} arguments)");
        }

        var elements = probe;
        if (!TryScanBulks(ref probe, reader.Consumed, count, ref progress))
        {
            return false;
        }

        var args = new byte[count][];
        for (int i = 0; i < args.Length; i++)
        {
            elements.Advance(1);
            TryReadLength(ref elements, "bulk", out long length);
            var arg = new byte[length];
            elements.TryCopyTo(arg);
            elements.Advance(length + 2);
            args[i] = arg;
        }

        reader = elements;
        command = new RespCommand(args);
        return true;
    }

    /// <summary>
    /// Walks <paramref name="count"/> bulk strings without copying them: true when all have
    /// arrived and are well formed. Starts after the bulks <paramref name="progress"/> says were
    /// already checked, and records the ones checked now.
    /// </summary>
    private bool TryScanBulks(ref SequenceReader<byte> probe, long requestStart, long count, ref RespParseProgress progress)
    {
        long first = 0;
        long skip = progress.CheckedBytes - (probe.Consumed - requestStart);
        if (progress.Count == count && progress.CheckedArgs > 0 && skip > 0 && probe.Remaining >= skip)
        {
            probe.Advance(skip);
            first = progress.CheckedArgs;
        }

        for (long i = first; i < count; i++)
        {
            progress = new RespParseProgress(count, i, probe.Consumed - requestStart);
            if (!probe.TryRead(out byte marker))
            {
                return false;
            }

            if (marker != (byte)'$')
            {
                throw new ProtocolException($"expected '$', got {Describe(marker)} (argument {i + 1} of {count})");
            }

            if (!TryReadLength(ref probe, "bulk", out long length))
            {
                return false;
            }

            if (length < 0 || length > BulkBytesMax)
            {
                throw new ProtocolException($"invalid bulk length: {length} (allowed 0..{BulkBytesMax} bytes)");
            }

            long requestBytes = probe.Consumed - requestStart + length + 2;
            if (requestBytes > RequestBytesMax)
            {
                throw new ProtocolException(
                    $"request too large: it announces more than the limit of {RequestBytesMax} bytes");
            }

            if (probe.Remaining < length + 2)
            {
                return false;
            }

            probe.Advance(length);
            probe.TryRead(out byte cr);
            probe.TryRead(out byte lf);
            if (cr != (byte)'\r' || lf != (byte)'\n')
            {
                throw new ProtocolException(
                    $"expected CRLF after a bulk string of {length} bytes, got {Describe(cr)} {Describe(lf)}");
            }
        }

        return true;
    }

    /// <summary>
    /// Reads the decimal length after a <c>*</c> or <c>$</c> marker up to and including its CRLF.
    /// Strict as Redis's <c>string2ll</c>: optional minus, digits, no leading zeros.
    /// </summary>
    private static bool TryReadLength(ref SequenceReader<byte> probe, string what, out long value)
    {
        value = 0;
        bool negative = false;
        int digits = 0;
        for (int chars = 0; ; chars++)
        {
            if (!probe.TryRead(out byte b))
            {
                return false;
            }

            if (b == (byte)'\r')
            {
                break;
            }

            if (chars == LengthCharsMax)
            {
                throw new ProtocolException($"invalid {what} length: longer than {LengthCharsMax} characters");
            }

            if (b == (byte)'-' && chars == 0)
            {
                negative = true;
                continue;
            }

            if (b is < (byte)'0' or > (byte)'9')
            {
                throw new ProtocolException($"invalid {what} length: unexpected {Describe(b)}");
            }

            if (digits == 1 && value == 0)
            {
                throw new ProtocolException($"invalid {what} length: leading zero");
            }

            value = (value * 10) + (b - '0');
            digits++;
        }

        if (digits == 0 || (negative && value == 0))
        {
            throw new ProtocolException($"invalid {what} length: no digits before CR");
        }

        if (!probe.TryRead(out byte lf))
        {
            return false;
        }

        if (lf != (byte)'\n')
        {
            throw new ProtocolException($"invalid {what} length: expected LF after CR, got {Describe(lf)}");
        }

        if (negative)
        {
            value = -value;
        }

        return true;
    }

    private static bool TryReadInline(ref SequenceReader<byte> reader, out RespCommand command)
    {
        command = default;
        var probe = reader;
        if (!probe.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
        {
            // The line may be InlineBytesMax bytes plus a CR still waiting for its LF.
            if (reader.Remaining > InlineBytesMax + 1)
            {
                throw new ProtocolException($"too big inline request: no newline within {InlineBytesMax} bytes");
            }

            return false;
        }

        if (line.Length > InlineBytesMax + 1)
        {
            throw new ProtocolException($"too big inline request: a line of {line.Length} bytes, the limit is {InlineBytesMax}");
        }

        byte[]? rented = null;
        try
        {
            ReadOnlySpan<byte> text;
            if (line.IsSingleSegment)
            {
                text = line.FirstSpan;
            }
            else
            {
                rented = ArrayPool<byte>.Shared.Rent((int)line.Length);
                line.CopyTo(rented);
                text = rented.AsSpan(0, (int)line.Length);
            }

            if (!text.IsEmpty && text[^1] == (byte)'\r')
            {
                text = text[..^1];
            }

            if (text.Length > InlineBytesMax)
            {
                throw new ProtocolException($"too big inline request: a line of {text.Length} bytes, the limit is {InlineBytesMax}");
            }

            var args = InlineArgs.Split(text);
            reader = probe;
            command = args.Length == 0 ? default : new RespCommand(args);
            return true;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>A byte for an error message: printable ASCII quoted, anything else in hex.</summary>
    internal static string Describe(byte b) =>
        b is >= 0x20 and < 0x7F ? $"'{(char)b}'" : $"0x{b:X2}";
}
