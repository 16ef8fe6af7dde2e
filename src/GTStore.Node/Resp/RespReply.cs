using System.Buffers;
using GTStore.Protocol.Resp;

namespace GTStore.Node.Resp;

/// <summary>
/// One reply waiting for its turn on the connection: replies are written in request order, so a
/// reply that is ready before an earlier one is kept as this small value until then.
/// </summary>
internal readonly struct RespReply
{
    private readonly Kind _kind;
    private readonly long _integer;
    private readonly object? _payload;

    private RespReply(Kind kind, long integer = 0, object? payload = null)
    {
        _kind = kind;
        _integer = integer;
        _payload = payload;
    }

    private enum Kind : byte
    {
        Ok,
        Simple,
        Error,
        Integer,
        Bulk,
        Text,
        NullBulk,
        Array,
        NullArray,
    }

    public static RespReply Ok => new(Kind.Ok);

    public static RespReply NullBulk => new(Kind.NullBulk);

    public static RespReply NullArray => new(Kind.NullArray);

    public static RespReply EmptyArray => new(Kind.Array, payload: System.Array.Empty<RespReply>());

    public bool IsError => _kind == Kind.Error;

    public bool IsNull => _kind is Kind.NullBulk or Kind.NullArray;

    /// <summary>The text of an error reply, or null.</summary>
    public string? ErrorText => _kind == Kind.Error ? (string)_payload! : null;

    public static RespReply Simple(string text) => new(Kind.Simple, payload: text);

    /// <summary>An error; <paramref name="message"/> starts with its code (<c>ERR ...</c>).</summary>
    public static RespReply Error(string message) => new(Kind.Error, payload: message);

    public static RespReply Integer(long value) => new(Kind.Integer, value);

    /// <summary>A bulk string, or the null bulk string for null.</summary>
    public static RespReply Bulk(byte[]? value) => value is null ? NullBulk : new(Kind.Bulk, payload: value);

    /// <summary>A bulk string holding UTF-8 text.</summary>
    public static RespReply Text(string text) => new(Kind.Text, payload: text);

    public static RespReply Array(RespReply[] items) => new(Kind.Array, payload: items);

    public void WriteTo(IBufferWriter<byte> output)
    {
        switch (_kind)
        {
            case Kind.Ok:
                RespWriter.WriteOk(output);
                break;
            case Kind.Simple:
                RespWriter.WriteSimpleString(output, (string)_payload!);
                break;
            case Kind.Error:
                RespWriter.WriteError(output, (string)_payload!);
                break;
            case Kind.Integer:
                RespWriter.WriteInteger(output, _integer);
                break;
            case Kind.Bulk:
                RespWriter.WriteBulkString(output, (byte[])_payload!);
                break;
            case Kind.Text:
                RespWriter.WriteBulkString(output, (string)_payload!);
                break;
            case Kind.NullBulk:
                RespWriter.WriteNullBulkString(output);
                break;
            case Kind.NullArray:
                RespWriter.WriteNullArray(output);
                break;
            case Kind.Array:
                var items = (RespReply[])_payload!;
                RespWriter.WriteArrayHeader(output, items.Length);
                foreach (var item in items)
                {
                    item.WriteTo(output);
                }

                break;
            default:
                throw new InvalidOperationException($"unknown reply kind {_kind}");
        }
    }
}
