using System.Buffers;

namespace GTStore.Protocol.Tests;

/// <summary>Byte strings cut into multi-segment sequences, as a socket's pipe may deliver them.</summary>
internal static class Sequences
{
    /// <summary>
    /// The bytes as a sequence of segments of the given sizes; the last segment takes the rest.
    /// Sizes past the end give empty segments, which readers must also cope with.
    /// </summary>
    public static ReadOnlySequence<byte> Segmented(byte[] bytes, int[] sizes)
    {
        var chunks = new List<ReadOnlyMemory<byte>>();
        var offset = 0;
        foreach (var size in sizes)
        {
            var take = Math.Min(size, bytes.Length - offset);
            chunks.Add(bytes.AsMemory(offset, take));
            offset += take;
        }

        chunks.Add(bytes.AsMemory(offset));
        var first = new Segment(chunks[0], 0);
        var last = first;
        foreach (var chunk in chunks.Skip(1))
        {
            last = last.Append(chunk);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
