namespace GTStore.Node.Resp;

/// <summary>
/// Redis's glob patterns (CONFIG GET): <c>*</c>, <c>?</c>, <c>[abc]</c>, <c>[a-z]</c>, <c>[^a]</c>
/// and <c>\</c> escapes, ASCII case ignored. Matches setting names only, so patterns and names are short.
/// </summary>
internal static class Glob
{
    public static bool Matches(ReadOnlySpan<byte> pattern, string name)
    {
        Span<byte> text = stackalloc byte[name.Length];
        for (int i = 0; i < name.Length; i++)
        {
            text[i] = (byte)name[i];
        }

        return Match(pattern, text);
    }

    private static bool Match(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text)
    {
        while (!pattern.IsEmpty)
        {
            switch (pattern[0])
            {
                case (byte)'*':
                    while (pattern.Length > 1 && pattern[1] == (byte)'*')
                    {
                        pattern = pattern[1..];
                    }

                    for (int skip = 0; skip <= text.Length; skip++)
                    {
                        if (Match(pattern[1..], text[skip..]))
                        {
                            return true;
                        }
                    }

                    return false;
                case (byte)'?':
                    if (text.IsEmpty)
                    {
                        return false;
                    }

                    break;
                case (byte)'[':
                    if (text.IsEmpty || !MatchClass(ref pattern, text[0]))
                    {
                        return false;
                    }

                    break;
                case (byte)'\\' when pattern.Length > 1:
                    pattern = pattern[1..];
                    if (text.IsEmpty || Lower(pattern[0]) != Lower(text[0]))
                    {
                        return false;
                    }

                    break;
                default:
                    if (text.IsEmpty || Lower(pattern[0]) != Lower(text[0]))
                    {
                        return false;
                    }

                    break;
            }

            pattern = pattern[1..];
            text = text[1..];
        }

        return text.IsEmpty;
    }

    /// <summary>Matches one character against the class at the start of <paramref name="pattern"/>, leaving it on the closing bracket.</summary>
    private static bool MatchClass(ref ReadOnlySpan<byte> pattern, byte c)
    {
        pattern = pattern[1..];
        bool negate = !pattern.IsEmpty && pattern[0] == (byte)'^';
        if (negate)
        {
            pattern = pattern[1..];
        }

        bool matched = false;
        while (!pattern.IsEmpty && pattern[0] != (byte)']')
        {
            if (pattern[0] == (byte)'\\' && pattern.Length > 1)
            {
                pattern = pattern[1..];
                matched |= Lower(pattern[0]) == Lower(c);
            }
            else if (pattern.Length > 2 && pattern[1] == (byte)'-' && pattern[2] != (byte)']')
            {
                byte low = Lower(pattern[0]);
                byte high = Lower(pattern[2]);
                if (low > high)
                {
                    (low, high) = (high, low);
                }

                matched |= Lower(c) >= low && Lower(c) <= high;
                pattern = pattern[2..];
            }
            else
            {
                matched |= Lower(pattern[0]) == Lower(c);
            }

            pattern = pattern[1..];
        }

        if (pattern.IsEmpty)
        {
            // An unclosed class: Redis treats the end of the pattern as the closing bracket.
            pattern = "]"u8;
        }

        return matched != negate;
    }

    private static byte Lower(byte b) => b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;
}
