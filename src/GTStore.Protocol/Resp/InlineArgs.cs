namespace GTStore.Protocol.Resp;

/// <summary>
/// Splits an inline request line into arguments with Redis's rules (<c>sdssplitargs</c>):
/// arguments are separated by spaces, tabs, CR, LF or NUL; <c>"..."</c> takes the escapes
/// <c>\n \r \t \b \a \\ \" \xHH</c>; <c>'...'</c> takes only <c>\'</c>; a closing quote must be
/// followed by a separator or the end of the line.
/// </summary>
internal static class InlineArgs
{
    private const string UnbalancedQuotes = "unbalanced quotes in request";

    public static byte[][] Split(ReadOnlySpan<byte> line)
    {
        var args = new List<byte[]>();
        var current = new List<byte>();
        int i = 0;
        while (true)
        {
            while (i < line.Length && IsSpace(line[i]))
            {
                i++;
            }

            if (i == line.Length)
            {
                return [.. args];
            }

            i = ReadArg(line, i, current);
            args.Add([.. current]);
            current.Clear();
        }
    }

    /// <summary>Reads one argument starting at <paramref name="i"/>; returns the index after it.</summary>
    private static int ReadArg(ReadOnlySpan<byte> line, int i, List<byte> arg)
    {
        bool inDouble = false;
        bool inSingle = false;
        while (true)
        {
            if (i == line.Length)
            {
                if (inDouble || inSingle)
                {
                    throw new ProtocolException(UnbalancedQuotes + ": a quote is not closed");
                }

                return i;
            }

            byte b = line[i];
            if (inDouble)
            {
                if (b == (byte)'\\' && i + 3 < line.Length && line[i + 1] == (byte)'x'
                    && IsHex(line[i + 2]) && IsHex(line[i + 3]))
                {
                    arg.Add((byte)((HexValue(line[i + 2]) << 4) | HexValue(line[i + 3])));
                    i += 4;
                }
                else if (b == (byte)'\\' && i + 1 < line.Length)
                {
                    arg.Add(Unescape(line[i + 1]));
                    i += 2;
                }
                else if (b == (byte)'"')
                {
                    return CloseQuote(line, i);
                }
                else
                {
                    arg.Add(b);
                    i++;
                }
            }
            else if (inSingle)
            {
                if (b == (byte)'\\' && i + 1 < line.Length && line[i + 1] == (byte)'\'')
                {
                    arg.Add((byte)'\'');
                    i += 2;
                }
                else if (b == (byte)'\'')
                {
                    return CloseQuote(line, i);
                }
                else
                {
                    arg.Add(b);
                    i++;
                }
            }
            else if (b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t' or 0)
            {
                return i;
            }
            else
            {
                inDouble = b == (byte)'"';
                inSingle = b == (byte)'\'';
                if (!inDouble && !inSingle)
                {
                    arg.Add(b);
                }

                i++;
            }
        }
    }

    private static int CloseQuote(ReadOnlySpan<byte> line, int quote)
    {
        int next = quote + 1;
        if (next < line.Length && !IsSpace(line[next]))
        {
            throw new ProtocolException(
                UnbalancedQuotes + $": a closing quote is followed by {RespParser.Describe(line[next])}, not a space");
        }

        return next;
    }

    private static byte Unescape(byte b) => b switch
    {
        (byte)'n' => (byte)'\n',
        (byte)'r' => (byte)'\r',
        (byte)'t' => (byte)'\t',
        (byte)'b' => (byte)'\b',
        (byte)'a' => (byte)'\a',
        _ => b,
    };

    /// <summary>C's <c>isspace</c> in the C locale, plus NUL, which ends an argument too.</summary>
    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\v' or (byte)'\f' or (byte)'\r' or 0;

    private static bool IsHex(byte b) => char.IsAsciiHexDigit((char)b);

    private static int HexValue(byte b) => b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10;
}
