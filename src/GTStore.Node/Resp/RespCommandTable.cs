using System.Text;

namespace GTStore.Node.Resp;

/// <summary>The commands the RESP server answers.</summary>
internal enum RespCommandKind : byte
{
    Get,
    Set,
    SetNx,
    Del,
    Unlink,
    Exists,
    MGet,
    MSet,
    Ping,
    Echo,
    Info,
    DbSize,
    Command,
    Config,
    Client,
    Hello,
    Select,
    Auth,
    Quit,
    Cluster,
}

/// <summary>
/// One command's shape, in Redis's terms: <see cref="Arity"/> counts the name, a negative arity
/// means "at least"; keys sit at <see cref="FirstKey"/>..<see cref="LastKey"/> (negative: from the
/// end) every <see cref="KeyStep"/> arguments. The keys let a connection keep pipelined commands
/// on the same key in order while running the others concurrently.
/// </summary>
internal sealed record RespCommandSpec(
    RespCommandKind Kind, string Name, int Arity, int FirstKey = 0, int LastKey = 0, int KeyStep = 0, bool Writes = false)
{
    public byte[] NameBytes { get; } = Encoding.ASCII.GetBytes(Name);

    public bool HasKeys => KeyStep > 0;

    public bool ArityFits(int count) => Arity >= 0 ? count == Arity : count >= -Arity;

    /// <summary>Index one past the last key argument of a command with <paramref name="count"/> arguments.</summary>
    public int KeysEnd(int count) => LastKey >= 0 ? LastKey + 1 : count + LastKey + 1;
}

internal static class RespCommandTable
{
    public static readonly RespCommandSpec[] All =
    [
        new(RespCommandKind.Get, "get", 2, 1, 1, 1),
        new(RespCommandKind.Set, "set", -3, 1, 1, 1, Writes: true),
        new(RespCommandKind.SetNx, "setnx", 3, 1, 1, 1, Writes: true),
        new(RespCommandKind.Del, "del", -2, 1, -1, 1, Writes: true),
        // UNLINK is DEL for us (nothing is freed in the background); clients such as StackExchange.Redis send it for deletes.
        new(RespCommandKind.Unlink, "unlink", -2, 1, -1, 1, Writes: true),
        new(RespCommandKind.Exists, "exists", -2, 1, -1, 1),
        new(RespCommandKind.MGet, "mget", -2, 1, -1, 1),
        new(RespCommandKind.MSet, "mset", -3, 1, -1, 2, Writes: true),
        new(RespCommandKind.Ping, "ping", -1),
        new(RespCommandKind.Echo, "echo", 2),
        new(RespCommandKind.Info, "info", -1),
        new(RespCommandKind.DbSize, "dbsize", 1),
        new(RespCommandKind.Command, "command", -1),
        new(RespCommandKind.Config, "config", -2),
        new(RespCommandKind.Client, "client", -2),
        new(RespCommandKind.Hello, "hello", -1),
        new(RespCommandKind.Select, "select", 2),
        new(RespCommandKind.Auth, "auth", -2),
        new(RespCommandKind.Quit, "quit", -1),
        new(RespCommandKind.Cluster, "cluster", -2),
    ];

    /// <summary>The spec of the command named <paramref name="name"/> (any case), or null.</summary>
    public static RespCommandSpec? Find(ReadOnlySpan<byte> name)
    {
        foreach (var spec in All)
        {
            if (spec.NameBytes.Length == name.Length && Ascii.EqualsIgnoreCase(spec.NameBytes, name))
            {
                return spec;
            }
        }

        return null;
    }
}
