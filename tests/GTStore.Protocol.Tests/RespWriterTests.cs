using System.Buffers;
using System.Text;
using CsCheck;
using GTStore.Protocol.Resp;

namespace GTStore.Protocol.Tests;

/// <summary>The RESP reply writer: the exact bytes of every RESP2 type (issue 4: Redis clients read our replies).</summary>
public sealed class RespWriterTests
{
    [Fact]
    public void Each_reply_type_is_written_as_redis_writes_it()
    {
        Assert.Equal("+OK\r\n", Write(o => RespWriter.WriteOk(o)));
        Assert.Equal("+PONG\r\n", Write(o => RespWriter.WriteSimpleString(o, "PONG")));
        Assert.Equal("-ERR syntax error\r\n", Write(o => RespWriter.WriteError(o, "ERR syntax error")));
        Assert.Equal(":0\r\n", Write(o => RespWriter.WriteInteger(o, 0)));
        Assert.Equal(":-9223372036854775808\r\n", Write(o => RespWriter.WriteInteger(o, long.MinValue)));
        Assert.Equal(":9223372036854775807\r\n", Write(o => RespWriter.WriteInteger(o, long.MaxValue)));
        Assert.Equal("$0\r\n\r\n", Write(o => RespWriter.WriteBulkString(o, ReadOnlySpan<byte>.Empty)));
        Assert.Equal("$5\r\nhello\r\n", Write(o => RespWriter.WriteBulkString(o, "hello"u8)));
        Assert.Equal("$2\r\n\u00c3\u00a9\r\n", Write(o => RespWriter.WriteBulkString(o, "\u00e9")));
        Assert.Equal("$-1\r\n", Write(o => RespWriter.WriteNullBulkString(o)));
        Assert.Equal("*0\r\n", Write(o => RespWriter.WriteArrayHeader(o, 0)));
        Assert.Equal("*-1\r\n", Write(o => RespWriter.WriteNullArray(o)));
        Assert.Equal("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", Write(o => RespWriter.WriteCommand(o, [[.. "GET"u8], [.. "k"u8]])));
    }

    [Fact]
    public void Line_breaks_in_simple_strings_and_errors_become_spaces()
    {
        Assert.Equal("-ERR a  b c\r\n", Write(o => RespWriter.WriteError(o, "ERR a\r\nb\nc")));
        Assert.Equal("+a b\r\n", Write(o => RespWriter.WriteSimpleString(o, "a\rb")));
    }

    [Fact]
    public void Bulk_strings_carry_any_bytes_and_long_text_unchanged()
    {
        Gen.Byte.Array[0, 70_000].Sample(value =>
        {
            var output = new ArrayBufferWriter<byte>(16);
            RespWriter.WriteBulkString(output, value);
            var header = Encoding.ASCII.GetBytes($"${value.Length}\r\n");
            Assert.Equal([.. header, .. value, .. "\r\n"u8], output.WrittenSpan.ToArray());
        }, iter: 50);

        var text = new string('x', 10_000);
        Assert.Equal($"-ERR {text}\r\n", Write(o => RespWriter.WriteError(o, "ERR " + text)));
    }

    private static string Write(Action<IBufferWriter<byte>> write)
    {
        var output = new ArrayBufferWriter<byte>(1);
        write(output);
        return Encoding.Latin1.GetString(output.WrittenSpan);
    }
}
