using System.Text;

namespace GTStore.Protocol.Resp;

/// <summary>
/// One request read from a Redis client: the command name and its arguments, each a
/// binary-safe byte array owned by the command (copied out of the receive buffer, so it outlives it).
/// A command with no arguments at all is an empty request (<c>*0</c>, <c>*-1</c> or a blank inline
/// line), which Redis ignores and so do we.
/// </summary>
public readonly struct RespCommand
{
    private static readonly byte[][] NoArgs = [];

    private readonly byte[][]? _args;

    /// <summary>A command whose first argument is its name.</summary>
    public RespCommand(byte[][] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        _args = args;
    }

    /// <summary>All arguments, the command name first. Empty for an empty request.</summary>
    public byte[][] Args => _args ?? NoArgs;

    /// <summary>Number of arguments including the command name.</summary>
    public int Count => Args.Length;

    /// <summary>True for an empty request, which carries nothing to execute.</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>The command name as sent (any case). Empty for an empty request.</summary>
    public ReadOnlySpan<byte> Name => IsEmpty ? default : Args[0];

    /// <summary>Argument <paramref name="index"/>; 0 is the name.</summary>
    public byte[] this[int index] => Args[index];

    /// <summary>True when argument <paramref name="index"/> equals the ASCII text <paramref name="upper"/>, ignoring case.</summary>
    public bool ArgIs(int index, string upper) =>
        index < Count && Ascii.EqualsIgnoreCase(Args[index], upper);

    /// <summary>The arguments as text, for logs and tests; invalid UTF-8 is replaced.</summary>
    public override string ToString() =>
        string.Join(' ', Args.Select(a => Encoding.UTF8.GetString(a)));
}
