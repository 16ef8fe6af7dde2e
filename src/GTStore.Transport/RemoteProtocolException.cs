namespace GTStore.Transport;

/// <summary>
/// The peer answered a request with a <see cref="Protocol.FrameTypes.ProtocolError"/> frame: it
/// could not read what we sent. The message carries the peer's text. The peer closes the
/// connection after sending it.
/// </summary>
public sealed class RemoteProtocolException : Exception
{
    public RemoteProtocolException(string message)
        : base(message)
    {
    }
}
