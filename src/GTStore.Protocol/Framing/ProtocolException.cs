namespace GTStore.Protocol;

/// <summary>
/// Bytes received from a peer break the protocol (bad length, oversize frame, unreadable
/// message). The connection answers one <see cref="FrameTypes.ProtocolError"/> frame carrying
/// <see cref="Exception.Message"/> and closes; the process carries on.
/// </summary>
public sealed class ProtocolException : Exception
{
    public ProtocolException(string message)
        : base(message)
    {
    }

    public ProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
