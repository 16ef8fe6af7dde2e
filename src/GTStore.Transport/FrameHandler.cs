using GTStore.Protocol;

namespace GTStore.Transport;

/// <summary>
/// Receives the inbound frames of a connection that are not responses to its own requests:
/// the peer's requests (answer with <see cref="FrameConnection.SendAsync(ushort, ulong, ReadOnlyMemory{byte}, CancellationToken)"/> and the same request
/// id) and one-way messages. Called by the connection's single reader loop, one frame at a time
/// in arrival order; while it runs, the connection reads nothing else, so hand long work off.
/// A <see cref="Protocol.ProtocolException"/> thrown here (an unreadable message) is answered with
/// a <see cref="FrameTypes.ProtocolError"/> frame and closes the connection.
/// </summary>
public delegate ValueTask FrameHandler(FrameConnection connection, Frame frame);
