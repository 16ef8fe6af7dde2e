using Microsoft.Extensions.Logging;

namespace GTStore.Node.Resp;

/// <summary>Source-generated log messages of the RESP server.</summary>
internal static partial class RespLog
{
    [LoggerMessage(EventId = 401, Level = LogLevel.Debug, Message = "RESP server listening on {Address}")]
    public static partial void Listening(ILogger logger, string address);

    [LoggerMessage(EventId = 402, Level = LogLevel.Debug, Message = "RESP client {Id} ({Remote}) closed: {Reason}")]
    public static partial void ConnectionClosed(ILogger logger, long id, string remote, string reason);

    [LoggerMessage(EventId = 403, Level = LogLevel.Information, Message = "RESP client {Id} ({Remote}) sent a malformed request, answering and closing: {Problem}")]
    public static partial void ProtocolError(ILogger logger, long id, string remote, string problem);

    [LoggerMessage(EventId = 404, Level = LogLevel.Warning, Message = "RESP command {Command} of client {Id} failed unexpectedly")]
    public static partial void CommandFailed(ILogger logger, Exception exception, string command, long id);

    [LoggerMessage(EventId = 405, Level = LogLevel.Warning, Message = "RESP server {Address} failed to accept a connection")]
    public static partial void AcceptFailed(ILogger logger, Exception exception, string address);

    [LoggerMessage(EventId = 406, Level = LogLevel.Warning, Message = "RESP server {Address} refused a connection: {Count} clients are connected, the limit is {Limit}")]
    public static partial void ConnectionRefused(ILogger logger, string address, int count, int limit);

    [LoggerMessage(EventId = 407, Level = LogLevel.Error, Message = "RESP client {Id} ({Remote}) failed unexpectedly")]
    public static partial void UnexpectedFailure(ILogger logger, Exception exception, long id, string remote);
}
