namespace GTStore.Transport;

/// <summary>
/// A connection is not open: it could not be opened, or it closed (the message says why) before
/// a frame could be sent or a response arrived. A request that fails this way may or may not
/// have reached the peer.
/// </summary>
public sealed class ConnectionClosedException : IOException
{
    public ConnectionClosedException(string message)
        : base(message)
    {
    }

    public ConnectionClosedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
