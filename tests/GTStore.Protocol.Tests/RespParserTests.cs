using System.Buffers;
using System.Text;
using CsCheck;
using GTStore.Protocol.Resp;

namespace GTStore.Protocol.Tests;

/// <summary>
/// The RESP request parser (DESIGN.md "Layers": a parser returns "need more bytes" or a value,
/// rejects malformed input with a clear error, and never crashes on any byte sequence; issue 4:
/// binary-safe keys and values, pipelining, a malformed request gets one error).
/// </summary>
public sealed class RespParserTests
{
    private static readonly RespParser Parser = new(bulkBytesMax: 1024);

    private static readonly Gen<byte[][]> GenArgs = Gen.Byte.Array[0, 80].Array[1, 8];

    [Fact]
    public void Multibulk_commands_round_trip_across_segment_boundaries()
    {
        Gen.Select(GenArgs.Array[1, 6], Gen.Int[1, 64].Array[0, 12]).Sample((commands, cuts) =>
        {
            var wire = Encode(commands);
            var reader = new SequenceReader<byte>(Sequences.Segmented(wire, cuts));
            foreach (var args in commands)
            {
                Assert.True(Parser.TryReadCommand(ref reader, out var command));
                Assert.Equal(args, command.Args);
            }

            Assert.True(reader.End);
            Assert.False(Parser.TryReadCommand(ref reader, out _));
        });
    }

    [Fact]
    public void Inline_commands_round_trip_with_hex_escapes_and_quotes()
    {
        Gen.Select(GenArgs, Gen.Int[1, 16].Array[0, 6]).Sample((args, cuts) =>
        {
            var line = string.Join(" ", args.Select(QuoteInline)) + "\r\n";
            var reader = new SequenceReader<byte>(Sequences.Segmented(Encoding.ASCII.GetBytes(line), cuts));
            Assert.True(Parser.TryReadCommand(ref reader, out var command));
            Assert.Equal(args, command.Args);
            Assert.True(reader.End);
        });
    }

    [Fact]
    public void Every_proper_prefix_of_a_request_needs_more_bytes_and_leaves_the_reader_in_place()
    {
        Gen.Select(GenArgs, Gen.Bool).Sample((args, inline) =>
        {
            var wire = inline
                ? Encoding.ASCII.GetBytes(string.Join(" ", args.Select(QuoteInline)) + "\r\n")
                : Encode([args]);
            for (int length = 0; length < wire.Length; length++)
            {
                var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(wire, 0, length));
                Assert.False(Parser.TryReadCommand(ref reader, out _));
                Assert.Equal(0, reader.Consumed);
            }
        }, iter: 200);
    }

    [Fact]
    public void Reading_a_request_as_it_arrives_with_remembered_progress_gives_the_same_command()
    {
        Gen.Select(GenArgs.Array[1, 3], Gen.Int[1, 40]).Sample((commands, step) =>
        {
            var wire = Encode(commands);
            var progress = default(RespParseProgress);
            long start = 0;
            int next = 0;
            for (int arrived = 0; arrived <= wire.Length; arrived = arrived == wire.Length ? arrived + 1 : Math.Min(arrived + step, wire.Length))
            {
                while (true)
                {
                    var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(wire, 0, arrived));
                    reader.Advance(start);
                    if (!Parser.TryReadCommand(ref reader, out var command, ref progress))
                    {
                        Assert.Equal(start, reader.Consumed);
                        break;
                    }

                    Assert.Equal(commands[next++], command.Args);
                    start = reader.Consumed;
                }
            }

            Assert.Equal(commands.Length, next);
        });
    }

    [Fact]
    public void Random_bytes_never_throw_anything_but_a_protocol_exception()
    {
        var parser = new RespParser(bulkBytesMax: 64, requestBytesMax: 512, argsMax: 16);
        var genWire = Gen.OneOf(
            Gen.Byte.Array[0, 300],
            Gen.OneOf<string>("*", "$", "\r", "\n", "\r\n", "-", "0", "1", "3", "9", " ", "\"", "'", "\\x4", "\\", "a")
                .Array[0, 80].Select(parts => Encoding.ASCII.GetBytes(string.Concat(parts))));
        genWire.Sample(wire => ParseAll(parser, wire), iter: 20_000);
    }

    [Fact]
    public void A_valid_stream_with_one_byte_changed_parses_or_throws_a_protocol_exception()
    {
        Gen.Select(GenArgs.Array[1, 3], Gen.Int[0, int.MaxValue], Gen.Byte).Sample((commands, at, value) =>
        {
            var wire = Encode(commands);
            wire[at % wire.Length] = value;
            ParseAll(Parser, wire);
        }, iter: 5_000);
    }

    [Fact]
    public void A_bulk_over_the_limit_is_rejected_from_its_header_without_its_body()
    {
        var error = Rejects(Parser, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n");
        Assert.Equal("invalid bulk length: 1025 (allowed 0..1024 bytes)", error.Message);
    }

    [Fact]
    public void A_bulk_at_the_limit_is_read()
    {
        var value = new byte[1024];
        Random.Shared.NextBytes(value);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Encode([new[] { "SET"u8.ToArray(), "k"u8.ToArray(), value }])));
        Assert.True(Parser.TryReadCommand(ref reader, out var command));
        Assert.Equal(value, command[2]);
    }

    [Fact]
    public void An_inline_line_of_the_maximum_length_is_read_and_one_byte_more_is_rejected()
    {
        var longest = "PING " + new string('a', RespParser.InlineBytesMax - 5);
        var reader = Reader(longest + "\r\n");
        Assert.True(Parser.TryReadCommand(ref reader, out var command));
        Assert.Equal(2, command.Count);

        Rejects(Parser, longest + "a\r\n");
    }

    [Fact]
    public void Inline_data_without_a_newline_needs_more_bytes_until_it_passes_the_limit()
    {
        var partial = Reader(new string('a', RespParser.InlineBytesMax + 1));
        Assert.False(Parser.TryReadCommand(ref partial, out _));

        var error = Rejects(Parser, new string('a', RespParser.InlineBytesMax + 2));
        Assert.StartsWith("too big inline request", error.Message);
    }

    [Theory]
    [InlineData("*0\r\n")]
    [InlineData("*-1\r\n")]
    [InlineData("\r\n")]
    [InlineData("   \t \n")]
    public void An_empty_request_is_consumed_and_returned_empty(string wire)
    {
        var reader = Reader(wire);
        Assert.True(Parser.TryReadCommand(ref reader, out var command));
        Assert.True(command.IsEmpty);
        Assert.True(reader.End);
    }

    [Fact]
    public void Inline_arguments_follow_redis_quoting_rules()
    {
        var reader = Reader("set \"a b\" 'c\\'d' \"\\x41\\n\\\"\" plain\ttab \"\"\n");
        Assert.True(Parser.TryReadCommand(ref reader, out var command));
        Assert.Equal(["set", "a b", "c'd", "A\n\"", "plain", "tab", ""], command.Args.Select(a => Encoding.ASCII.GetString(a)));
    }

    [Fact]
    public void Pipelined_requests_of_both_kinds_are_read_one_by_one()
    {
        var reader = Reader("PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nGET k\n*1\r\n$4\r\nPI");
        string[] expected = ["PING", "ECHO hi", "GET k"];
        foreach (var text in expected)
        {
            Assert.True(Parser.TryReadCommand(ref reader, out var command));
            Assert.Equal(text, command.ToString());
        }

        long consumed = reader.Consumed;
        Assert.False(Parser.TryReadCommand(ref reader, out _));
        Assert.Equal(consumed, reader.Consumed);
    }

    [Fact]
    public void Arguments_are_copies_that_outlive_the_input_buffer()
    {
        var wire = Encoding.ASCII.GetBytes("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(wire));
        Assert.True(Parser.TryReadCommand(ref reader, out var command));
        Array.Clear(wire);
        Assert.Equal("GET key", command.ToString());
    }

    /// <summary>
    /// Malformed requests, one per line, and the start of the message each must get. The parser
    /// here allows 1024-byte bulks, 4096-byte requests and 8 arguments.
    /// </summary>
    public static TheoryData<string, string> MalformedRequests() => new()
    {
        // The argument count is not a number.
        { "*abc\r\n", "invalid multibulk length: unexpected 'a'" },
        // A negative count other than -1 (the null array, which is ignored).
        { "*-2\r\n", "invalid multibulk length: -2" },
        // More arguments than allowed, rejected before any of them arrives.
        { "*9\r\n", "invalid multibulk length: 9 (allowed 1..8 arguments)" },
        // Leading zeros are not a canonical integer (Redis's string2ll refuses them too).
        { "*01\r\n", "invalid multibulk length: leading zero" },
        // A marker with no digits.
        { "*\r\n", "invalid multibulk length: no digits before CR" },
        // A lone minus sign.
        { "*-\r\n", "invalid multibulk length: no digits before CR" },
        // CR not followed by LF.
        { "*1\r\r", "invalid multibulk length: expected LF after CR, got 0x0D" },
        // A length field longer than any valid length, rejected before its CR arrives.
        { "*12345678901234567890", "invalid multibulk length: longer than 19 characters" },
        // Array elements of a request must be bulk strings.
        { "*1\r\n:5\r\n", "expected '$', got ':' (argument 1 of 1)" },
        // An inline command inside an array.
        { "*2\r\n$3\r\nGET\r\nkey\r\n", "expected '$', got 'k' (argument 2 of 2)" },
        // The null bulk string is not a valid argument.
        { "*1\r\n$-1\r\n", "invalid bulk length: -1 (allowed 0..1024 bytes)" },
        // A bulk over the limit, rejected from its header alone.
        { "*1\r\n$1025\r\n", "invalid bulk length: 1025 (allowed 0..1024 bytes)" },
        // A huge bulk length; nothing is buffered for it.
        { "*1\r\n$999999999999\r\n", "invalid bulk length: 999999999999" },
        // A length with a stray letter.
        { "*1\r\n$3x\r\n", "invalid bulk length: unexpected 'x'" },
        // Minus zero is not a canonical integer.
        { "*1\r\n$-0\r\n", "invalid bulk length: no digits before CR" },
        // The data is longer than its announced length.
        { "*1\r\n$3\r\nGETX\r\n", "expected CRLF after a bulk string of 3 bytes, got 'X' 0x0D" },
        // The data ends with LF only.
        { "*1\r\n$3\r\nGET\n\n", "expected CRLF after a bulk string of 3 bytes, got 0x0A 0x0A" },
        // The announced lengths add up past the request limit before the data arrives.
        { "*5\r\n" + string.Concat(Enumerable.Repeat("$1000\r\n" + new string('v', 1000) + "\r\n", 4)) + "$1000\r\n",
            "request too large: it announces more than the limit of 4096 bytes" },
        // An inline double quote that is never closed.
        { "SET k \"abc\r\n", "unbalanced quotes in request: a quote is not closed" },
        // An inline single quote that is never closed.
        { "SET k 'abc\r\n", "unbalanced quotes in request: a quote is not closed" },
        // A closing quote glued to more text.
        { "SET k \"a\"b\r\n", "unbalanced quotes in request: a closing quote is followed by 'b', not a space" },
    };

    [Theory]
    [MemberData(nameof(MalformedRequests))]
    public void A_malformed_request_is_rejected_with_a_precise_message(string wire, string expected)
    {
        var parser = new RespParser(bulkBytesMax: 1024, requestBytesMax: 4096, argsMax: 8);
        var error = Rejects(parser, wire);
        Assert.StartsWith(expected, error.Message);
    }

    /// <summary>Parses until more bytes are needed; only <see cref="ProtocolException"/> may escape, and every read makes progress.</summary>
    private static void ParseAll(RespParser parser, byte[] wire)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(wire));
        try
        {
            while (true)
            {
                long before = reader.Consumed;
                if (!parser.TryReadCommand(ref reader, out _))
                {
                    Assert.Equal(before, reader.Consumed);
                    return;
                }

                Assert.True(reader.Consumed > before);
            }
        }
        catch (ProtocolException)
        {
            // The expected outcome for garbage.
        }
    }

    private static ProtocolException Rejects(RespParser parser, string wire) =>
        Assert.Throws<ProtocolException>(() =>
        {
            var reader = Reader(wire);
            parser.TryReadCommand(ref reader, out _);
        });

    private static SequenceReader<byte> Reader(string wire) =>
        new(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(wire)));

    private static byte[] Encode(IEnumerable<byte[][]> commands)
    {
        var output = new ArrayBufferWriter<byte>();
        foreach (var args in commands)
        {
            RespWriter.WriteCommand(output, args);
        }

        return output.WrittenSpan.ToArray();
    }

    /// <summary>An argument as inline text: plain when it is safe, else double-quoted with hex escapes.</summary>
    private static string QuoteInline(byte[] arg)
    {
        if (arg.Length > 0 && arg.All(b => b is > (byte)' ' and < 0x7F and not (byte)'"' and not (byte)'\'' and not (byte)'\\' and not (byte)'*'))
        {
            return Encoding.ASCII.GetString(arg);
        }

        return "\"" + string.Concat(arg.Select(b => $"\\x{b:x2}")) + "\"";
    }
}
