using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using CsCheck;
using GTStore.Core;

namespace GTStore.Protocol.Tests;

/// <summary>
/// The frame codec (DESIGN.md "Layers": a parser returns "need more bytes" or a value, rejects
/// malformed input with a clear error, and never crashes on any byte sequence).
/// </summary>
public sealed class FramingTests
{
    private static readonly Gen<(ushort Type, ulong RequestId, byte[] Payload)> GenFrame =
        Gen.Select(Gen.UShort, Gen.ULong, Gen.Byte.Array[0, 600]);

    [Fact]
    public void Frame_round_trips_across_segment_boundaries()
    {
        Gen.Select(GenFrame.Array[1, 6], Gen.Int[1, 64].Array[0, 12])
            .Sample((frames, cuts) =>
            {
                var wire = Encode(frames);
                var sequence = Sequences.Segmented(wire, cuts);
                var reader = new SequenceReader<byte>(sequence);
                foreach (var (type, requestId, payload) in frames)
                {
                    Assert.True(FrameCodec.TryReadFrame(ref reader, out var frame));
                    Assert.Equal(type, frame.Type);
                    Assert.Equal(requestId, frame.RequestId);
                    Assert.Equal(payload, frame.Payload.ToArray());
                }

                Assert.True(reader.End);
                Assert.False(FrameCodec.TryReadFrame(ref reader, out _));
            });
    }

    [Fact]
    public void Every_proper_prefix_of_a_frame_needs_more_bytes_and_leaves_the_reader_in_place()
    {
        GenFrame.Sample((type, requestId, payload) =>
        {
            var wire = Encode([(type, requestId, payload)]);
            for (int length = 0; length < wire.Length; length++)
            {
                var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(wire, 0, length));
                Assert.False(FrameCodec.TryReadFrame(ref reader, out _));
                Assert.Equal(0, reader.Consumed);
            }
        }, iter: 200);
    }

    [Fact]
    public void Encoded_length_matches_the_bytes_written()
    {
        GenFrame.Sample((type, requestId, payload) =>
        {
            var output = new ArrayBufferWriter<byte>();
            FrameCodec.Write(output, type, requestId, payload);
            Assert.Equal(FrameCodec.EncodedLength(payload.Length), output.WrittenCount);
        });
    }

    [Fact]
    public void Payload_is_a_copy_that_outlives_the_input_buffer()
    {
        var wire = Encode([(7, 42, [1, 2, 3])]);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(wire));
        Assert.True(FrameCodec.TryReadFrame(ref reader, out var frame));
        Array.Clear(wire);
        Assert.Equal(new byte[] { 1, 2, 3 }, frame.Payload.ToArray());
    }

    [Fact]
    public void Writing_a_payload_over_the_limit_is_refused_naming_the_limit()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => FrameCodec.EncodedLength(FrameCodec.PayloadBytesMax + 1));
        Assert.Contains(FrameCodec.PayloadBytesMax.ToString(), error.Message);
        Assert.Equal(Limits.FrameBytesMax + 4, FrameCodec.EncodedLength(FrameCodec.PayloadBytesMax));
    }

    public static TheoryData<string, byte[]> NeedMoreBytesCases => new()
    {
        // Nothing has arrived yet.
        { "empty input", [] },
        // Three of the four length-prefix bytes.
        { "truncated length prefix", [10, 0, 0] },
        // A valid length prefix and nothing else.
        { "length prefix only", Header(10) },
        // Type and half the request id of a header-only body.
        { "truncated body header", [.. Header(10), 1, 0, 9, 9, 9, 9] },
        // A 5-byte payload of which 4 bytes arrived.
        { "truncated payload", [.. Header(15), .. new byte[14]] },
        // The largest legal body, announced but not yet sent: wait rather than reject.
        { "largest legal length, body pending", Header((uint)Limits.FrameBytesMax) },
    };

    [Theory]
    [MemberData(nameof(NeedMoreBytesCases))]
    public void Incomplete_frames_need_more_bytes(string name, byte[] input)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(input));
        Assert.False(FrameCodec.TryReadFrame(ref reader, out _), name);
        Assert.Equal(0, reader.Consumed);
    }

    public static TheoryData<string, byte[], string> MalformedCases => new()
    {
        // An empty body cannot hold the type and request id.
        { "length 0", Header(0), "frame body of 0 bytes is shorter than the 10-byte body header" },
        // One byte short of the body header.
        { "length 9", Header(9), "frame body of 9 bytes is shorter than the 10-byte body header" },
        // One byte over the limit: rejected from the prefix alone, before the body arrives.
        {
            "length one over the limit", Header((uint)Limits.FrameBytesMax + 1),
            $"frame body of {Limits.FrameBytesMax + 1} bytes exceeds the limit of {Limits.FrameBytesMax} bytes"
        },
        // 2^31 would be negative as an int: the length must be read unsigned.
        { "length 2^31", Header(0x8000_0000), $"frame body of 2147483648 bytes exceeds the limit of {Limits.FrameBytesMax} bytes" },
        // The largest u32 must not overflow any arithmetic.
        { "length uint.MaxValue", Header(uint.MaxValue), $"frame body of 4294967295 bytes exceeds the limit of {Limits.FrameBytesMax} bytes" },
        // The wire-format spec's own example: a 20 MB body.
        { "length 20 MB", Header(20_000_000), $"frame body of 20000000 bytes exceeds the limit of {Limits.FrameBytesMax} bytes" },
        // ASCII text (an HTTP request) sent to a frame port reads as a huge length.
        { "HTTP request line", Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\n"), "exceeds the limit" },
    };

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Malformed_frames_are_rejected_with_a_precise_message(string name, byte[] input, string expected)
    {
        var error = Assert.Throws<ProtocolException>(() =>
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(input));
            FrameCodec.TryReadFrame(ref reader, out _);
        });
        Assert.True(error.Message.Contains(expected, StringComparison.Ordinal), $"{name}: {error.Message}");
    }

    [Fact]
    public void A_header_only_body_is_a_frame_with_an_empty_payload()
    {
        byte[] input = [.. Header(10), 0xFF, 0xFF, 1, 0, 0, 0, 0, 0, 0, 0];
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(input));
        Assert.True(FrameCodec.TryReadFrame(ref reader, out var frame));
        Assert.Equal(new Frame(FrameTypes.ProtocolError, 1, frame.Payload), frame);
        Assert.True(frame.IsProtocolError);
        Assert.True(frame.Payload.IsEmpty);
    }

    [Fact]
    public void Random_bytes_yield_frames_need_more_bytes_or_a_protocol_error_and_nothing_else()
    {
        Gen.Select(Gen.Byte.Array[0, 200], Gen.Int[1, 32].Array[0, 8]).Sample((bytes, cuts) =>
        {
            var reader = new SequenceReader<byte>(Sequences.Segmented(bytes, cuts));
            try
            {
                // Each frame consumes at least 14 bytes, so this ends.
                while (FrameCodec.TryReadFrame(ref reader, out _))
                {
                }
            }
            catch (ProtocolException)
            {
                // Malformed input is expected; any other exception fails the test.
            }
        });
    }

    [Fact]
    public void Error_messages_are_cut_to_the_limit_at_a_character_boundary()
    {
        var message = new string('é', Limits.ErrorMessageBytesMax);
        var payload = FrameCodec.EncodeErrorMessage(message);
        Assert.True(payload.Length <= Limits.ErrorMessageBytesMax);
        Assert.Equal(new string('é', payload.Length / 2), FrameCodec.DecodeErrorMessage(payload));
        Assert.Equal("short", FrameCodec.DecodeErrorMessage(FrameCodec.EncodeErrorMessage("short")));
    }

    private static byte[] Header(uint bodyLength)
    {
        var header = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(header, bodyLength);
        return header;
    }

    private static byte[] Encode(IEnumerable<(ushort Type, ulong RequestId, byte[] Payload)> frames)
    {
        var output = new ArrayBufferWriter<byte>();
        foreach (var (type, requestId, payload) in frames)
        {
            FrameCodec.Write(output, type, requestId, payload);
        }

        return output.WrittenSpan.ToArray();
    }
}
