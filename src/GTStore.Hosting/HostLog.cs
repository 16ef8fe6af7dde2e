using Microsoft.Extensions.Logging;

namespace GTStore.Hosting;

/// <summary>Source-generated log messages shared by the node and manager hosts.</summary>
public static partial class HostLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Debug, Message = "{Peer} at {Address} unreachable: {Reason}")]
    public static partial void PeerUnreachable(ILogger logger, string peer, string address, string reason);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "malformed message from {Remote}: {Problem}")]
    public static partial void MalformedMessage(ILogger logger, string remote, string problem);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "{Role} listening on {Address}")]
    public static partial void Listening(ILogger logger, string role, string address);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "joined as {Node}")]
    public static partial void Joined(ILogger logger, string node);

    [LoggerMessage(EventId = 104, Level = LogLevel.Information, Message = "ring epoch {Epoch}{Pending}: {Nodes} nodes")]
    public static partial void RingChanged(ILogger logger, long epoch, string pending, int nodes);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "{Node} left the cluster; exiting")]
    public static partial void Left(ILogger logger, string node);

    [LoggerMessage(EventId = 107, Level = LogLevel.Error, Message = "the write-ahead log was not written or synced; the batch's acknowledgements were not sent: {Reason}")]
    public static partial void SyncFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 106, Level = LogLevel.Warning, Message = "manager at {Address} not reachable yet: {Reason}")]
    public static partial void ManagerNotReachable(ILogger logger, string address, string reason);
}
