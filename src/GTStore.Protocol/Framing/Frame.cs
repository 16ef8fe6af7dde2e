namespace GTStore.Protocol;

/// <summary>
/// One node-to-node message as it travels on a connection (DESIGN.md "Transport").
/// On the wire: <c>u32 LE BodyLength | u16 LE Type | u64 LE RequestId | payload</c>.
/// </summary>
/// <param name="Type">What the payload is; <see cref="FrameTypes.ProtocolError"/> is reserved.</param>
/// <param name="RequestId">
/// 0 for a one-way message; otherwise the id of a request, which its response carries back.
/// </param>
/// <param name="Payload">The message body; a frame read by <see cref="FrameCodec"/> owns it.</param>
public readonly record struct Frame(ushort Type, ulong RequestId, ReadOnlyMemory<byte> Payload)
{
    /// <summary>True when no response is expected (<see cref="RequestId"/> is 0).</summary>
    public bool IsOneWay => RequestId == 0;

    /// <summary>True when this frame reports a protocol error; its payload is a UTF-8 message.</summary>
    public bool IsProtocolError => Type == FrameTypes.ProtocolError;
}

/// <summary>
/// Frame types owned by the framing layer. Message types of the node, manager and client
/// protocols are defined next to their messages and must not use these values.
/// </summary>
public static class FrameTypes
{
    /// <summary>
    /// A peer found the stream malformed (or a request unreadable) and is about to close the
    /// connection. Payload: UTF-8 text of at most <c>Limits.ErrorMessageBytesMax</c> bytes.
    /// </summary>
    public const ushort ProtocolError = 0xFFFF;
}
