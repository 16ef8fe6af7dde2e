using GTStore.Core;
using GTStore.Core.Messages;
using Version = GTStore.Core.Version;

namespace GTStore.Node.Tests;

/// <summary>
/// When a batch's writes could not be logged, a write the node acknowledged to its own client is
/// answered Unknown naming the cause, never Ok and never Failed; reads and refusals go out as they were.
/// </summary>
public sealed class WithheldReplyTests
{
    private static readonly NodeId Self = new(2);
    private const string Reason = "write to the write-ahead log failed: IO error: No space left on device";

    [Fact]
    public void A_write_acknowledgement_becomes_unknown_naming_the_node_and_the_cause()
    {
        var ack = new ClientReply(ReplyStatus.Ok, Self, new VersionedValue(new Version(9, 2), null), null);
        var withheld = Assert.IsType<ClientReply>(NodeHost.WithheldReply(ack, Self, Reason));
        Assert.Equal(ReplyStatus.Unknown, withheld.Status);
        Assert.Null(withheld.Value);
        Assert.Contains("server2", withheld.Error, StringComparison.Ordinal);
        Assert.Contains("No space left on device", withheld.Error, StringComparison.Ordinal);
        Assert.Contains("unknown", withheld.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Reads_and_refusals_are_unchanged()
    {
        Message[] unchanged =
        [
            new ClientReply(ReplyStatus.Ok, Self, new VersionedValue(new Version(9, 2), [1, 2]), null),
            new ClientReply(ReplyStatus.Ok, Self, new VersionedValue(new Version(9, 2), []), null),
            new ClientReply(ReplyStatus.NotFound, Self, null, null),
            new ClientReply(ReplyStatus.Failed, Self, null, "0 of 3 replicas acknowledged"),
            new OkReply(),
        ];
        foreach (var reply in unchanged)
            Assert.Same(reply, NodeHost.WithheldReply(reply, Self, Reason));
    }
}
