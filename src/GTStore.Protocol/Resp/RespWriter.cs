using System.Buffers;
using System.Text;

namespace GTStore.Protocol.Resp;

/// <summary>
/// Writes RESP2 values straight into an <see cref="IBufferWriter{T}"/> (a connection's
/// <c>PipeWriter</c>): no intermediate buffers, no allocation for anything but the text of
/// simple strings and errors.
/// </summary>
public static class RespWriter
{
    /// <summary>Longest <c>:integer</c>, <c>$len</c> or <c>*count</c> line: marker, sign, 19 digits, CRLF.</summary>
    private const int NumberLineBytesMax = 1 + 1 + 19 + 2;

    private static ReadOnlySpan<byte> Crlf => "\r\n"u8;

    /// <summary><c>+OK</c>.</summary>
    public static void WriteOk(IBufferWriter<byte> output) => WriteRaw(output, "+OK\r\n"u8);

    /// <summary>
    /// A simple string (<c>+text</c>). CR and LF cannot appear in one and are written as spaces,
    /// as Redis does for errors.
    /// </summary>
    public static void WriteSimpleString(IBufferWriter<byte> output, string text) => WriteLine(output, (byte)'+', text);

    /// <summary>
    /// An error (<c>-CODE message</c>); <paramref name="message"/> starts with its code, e.g.
    /// <c>ERR syntax error</c>. CR and LF are written as spaces.
    /// </summary>
    public static void WriteError(IBufferWriter<byte> output, string message) => WriteLine(output, (byte)'-', message);

    /// <summary>An integer (<c>:n</c>).</summary>
    public static void WriteInteger(IBufferWriter<byte> output, long value) => WriteNumberLine(output, (byte)':', value);

    /// <summary>A bulk string (<c>$len</c> and the bytes).</summary>
    public static void WriteBulkString(IBufferWriter<byte> output, ReadOnlySpan<byte> value)
    {
        ArgumentNullException.ThrowIfNull(output);
        WriteNumberLine(output, (byte)'$', value.Length);
        if (!value.IsEmpty)
        {
            output.Write(value);
        }

        WriteRaw(output, Crlf);
    }

    /// <summary>A bulk string holding <paramref name="text"/> in UTF-8.</summary>
    public static void WriteBulkString(IBufferWriter<byte> output, string text)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(text);
        WriteNumberLine(output, (byte)'$', Encoding.UTF8.GetByteCount(text));
        WriteUtf8(output, text);
        WriteRaw(output, Crlf);
    }

    /// <summary>The null bulk string (<c>$-1</c>): a missing key.</summary>
    public static void WriteNullBulkString(IBufferWriter<byte> output) => WriteRaw(output, "$-1\r\n"u8);

    /// <summary>The header of an array of <paramref name="count"/> elements; the elements follow.</summary>
    public static void WriteArrayHeader(IBufferWriter<byte> output, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        WriteNumberLine(output, (byte)'*', count);
    }

    /// <summary>The null array (<c>*-1</c>).</summary>
    public static void WriteNullArray(IBufferWriter<byte> output) => WriteRaw(output, "*-1\r\n"u8);

    /// <summary>A request as clients send it: an array of bulk strings, the command name first.</summary>
    public static void WriteCommand(IBufferWriter<byte> output, IReadOnlyList<byte[]> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        WriteArrayHeader(output, args.Count);
        foreach (var arg in args)
        {
            WriteBulkString(output, arg);
        }
    }

    private static void WriteRaw(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Write(bytes);
    }

    private static void WriteNumberLine(IBufferWriter<byte> output, byte marker, long value)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(NumberLineBytesMax);
        span[0] = marker;
        value.TryFormat(span[1..], out int digits, provider: System.Globalization.CultureInfo.InvariantCulture);
        span[1 + digits] = (byte)'\r';
        span[2 + digits] = (byte)'\n';
        output.Advance(3 + digits);
    }

    private static void WriteLine(IBufferWriter<byte> output, byte marker, string text)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(text);
        output.GetSpan(1)[0] = marker;
        output.Advance(1);
        if (text.AsSpan().IndexOfAny('\r', '\n') >= 0)
        {
            text = text.Replace('\r', ' ').Replace('\n', ' ');
        }

        WriteUtf8(output, text);
        WriteRaw(output, Crlf);
    }

    private static void WriteUtf8(IBufferWriter<byte> output, string text)
    {
        int bytes = Encoding.UTF8.GetMaxByteCount(text.Length);
        if (bytes <= 4096)
        {
            int written = Encoding.UTF8.GetBytes(text, output.GetSpan(bytes));
            output.Advance(written);
            return;
        }

        output.Write(Encoding.UTF8.GetBytes(text));
    }
}
