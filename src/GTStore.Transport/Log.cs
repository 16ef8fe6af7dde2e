using Microsoft.Extensions.Logging;

namespace GTStore.Transport;

/// <summary>Source-generated log messages of the transport.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Connection {Remote} closed: {Reason}")]
    public static partial void ConnectionClosed(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Protocol error on connection {Remote}, answering and closing: {Problem}")]
    public static partial void ProtocolErrorSent(ILogger logger, string remote, string problem);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Connection {Remote} reported a protocol error: {Problem}")]
    public static partial void ProtocolErrorReceived(ILogger logger, string remote, string problem);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "Connection {Remote} dropped a response to request {RequestId} that no one waits for (timed out)")]
    public static partial void LateResponseDropped(ILogger logger, string remote, ulong requestId);

    [LoggerMessage(EventId = 5, Level = LogLevel.Debug, Message = "Connection {Remote} has no frame handler; dropped frame of type {Type}")]
    public static partial void FrameDroppedWithoutHandler(ILogger logger, string remote, ushort type);

    [LoggerMessage(EventId = 6, Level = LogLevel.Error, Message = "Frame handler of connection {Remote} failed on a frame of type {Type}; closing the connection")]
    public static partial void HandlerFailed(ILogger logger, Exception exception, string remote, ushort type);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "Listener {Address} failed to accept a connection")]
    public static partial void AcceptFailed(ILogger logger, Exception exception, string address);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "Listener {Address} refused a connection: {Count} connections are open, the limit is {Limit}")]
    public static partial void ConnectionRefused(ILogger logger, string address, int count, int limit);

    [LoggerMessage(EventId = 9, Level = LogLevel.Error, Message = "Connection callback of listener {Address} failed")]
    public static partial void CallbackFailed(ILogger logger, Exception exception, string address);

    [LoggerMessage(EventId = 10, Level = LogLevel.Error, Message = "Connection {Remote} failed unexpectedly")]
    public static partial void UnexpectedFailure(ILogger logger, Exception exception, string remote);

    [LoggerMessage(EventId = 11, Level = LogLevel.Error, Message = "Connection {Remote} dropped a {Message} of {Bytes} bytes: a frame carries at most {Limit}")]
    public static partial void OversizeMessageDropped(ILogger logger, string remote, string message, int bytes, int limit);
}
