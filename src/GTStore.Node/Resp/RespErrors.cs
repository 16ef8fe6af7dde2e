using System.Text;
using GTStore.Core.Messages;
using GTStore.Protocol.Resp;

namespace GTStore.Node.Resp;

/// <summary>
/// Error replies in Redis's words, so clients and people recognise them. Outcomes of the quorum
/// path all use the generic <c>ERR</c> code: a failure reads <c>ERR &lt;why&gt;</c>, and a request
/// whose outcome is not known reads <c>ERR outcome unknown: &lt;why&gt;</c>. We do not use
/// <c>TRYAGAIN</c> there: cluster-aware clients retry it on their own, and in Redis it means
/// "nothing happened", which is exactly what an unknown outcome cannot promise.
/// </summary>
internal static class RespErrors
{
    /// <summary>Longest piece of client text quoted in an error, in characters (as Redis).</summary>
    private const int QuotedCharsMax = 128;

    public static readonly RespReply Syntax = RespReply.Error("ERR syntax error");

    public static readonly RespReply NotInteger = RespReply.Error("ERR value is not an integer or out of range");

    public static RespReply WrongArity(string name) =>
        RespReply.Error($"ERR wrong number of arguments for '{name}' command");

    /// <summary>"ERR unknown command 'foo', with args beginning with: 'a' 'b' ", as Redis 7.</summary>
    public static RespReply UnknownCommand(RespCommand command)
    {
        var args = new StringBuilder();
        for (int i = 1; i < command.Count && args.Length < QuotedCharsMax; i++)
        {
            args.Append('\'').Append(Cut(Quoted(command[i]), QuotedCharsMax - args.Length)).Append("' ");
        }

        return RespReply.Error($"ERR unknown command '{Cut(Quoted(command[0]), QuotedCharsMax)}', with args beginning with: {args}");
    }

    public static RespReply UnknownSubcommand(byte[] subcommand, string command) =>
        RespReply.Error($"ERR unknown subcommand '{Cut(Quoted(subcommand), QuotedCharsMax)}'. Try {command} HELP.");

    /// <summary>The error for a reply of the quorum path that is not a success.</summary>
    public static RespReply Of(ClientReply reply) => reply.Status switch
    {
        ReplyStatus.Unknown => RespReply.Error("ERR outcome unknown: " + (reply.Error ?? "the request timed out in flight")),
        ReplyStatus.Failed or ReplyStatus.Invalid => RespReply.Error("ERR " + (reply.Error ?? "the request failed")),
        _ => RespReply.Error($"ERR unexpected reply status {reply.Status}" + (reply.Error is null ? "" : ": " + reply.Error)),
    };

    /// <summary>Client bytes as text for messages; invalid UTF-8 is replaced.</summary>
    public static string Text(byte[] bytes) => Encoding.UTF8.GetString(bytes);

    /// <summary>The start of client bytes as text, enough for <see cref="QuotedCharsMax"/> characters.</summary>
    private static string Quoted(byte[] bytes) =>
        Encoding.UTF8.GetString(bytes, 0, Math.Min(bytes.Length, 4 * QuotedCharsMax));

    private static string Cut(string text, int chars) => text.Length <= chars ? text : text[..Math.Max(chars, 0)];
}
