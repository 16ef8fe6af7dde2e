using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Protocol;
using GTStore.Transport;

namespace GTStore.Cli;

/// <summary>One node as <c>status</c> shows it: the manager's view plus the node's own counts.</summary>
public sealed record NodeView(MemberStatus Member, NodeStatsReply? Stats)
{
    public string State => Member.Down ? "down" : Stats is null ? "unreachable" : Member.State.ToString().ToLowerInvariant();
}

/// <summary>Requests the CLI makes to the manager and nodes.</summary>
public static class Admin
{
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    public static async Task<Message> RequestAsync(string address, Message request, TimeSpan timeout, CancellationToken ct = default)
    {
        var connection = await FrameConnection.ConnectAsync(address, null, ct).ConfigureAwait(false);
        try
        {
            var frame = await connection.RequestAsync(MessageCodec.TypeOf(request), MessageCodec.Encode(request), timeout, ct).ConfigureAwait(false);
            return MessageCodec.Decode(frame.Type, frame.Payload.Span);
        }
        finally
        {
            // One request per connection: close at once (a paused peer would hold a graceful close).
            connection.Abort("request done");
        }
    }

    public static async Task<StatusReply> StatusAsync(string managerAddress, CancellationToken ct = default)
    {
        try
        {
            return (StatusReply)await RequestAsync(managerAddress, new StatusRequest(), RequestTimeout, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or TimeoutException)
        {
            throw new CliException($"the manager at {managerAddress} is not answering: {e.Message}", 1);
        }
    }

    public static async Task<NodeStatsReply?> NodeStatsAsync(string address, CancellationToken ct = default)
    {
        try
        {
            return await RequestAsync(address, new NodeStatsRequest(), TimeSpan.FromSeconds(2), ct).ConfigureAwait(false) as NodeStatsReply;
        }
        catch (Exception e) when (e is IOException or TimeoutException or ProtocolException or RemoteProtocolException)
        {
            return null;
        }
    }

    public static async Task<List<NodeView>> NodesAsync(StatusReply status, CancellationToken ct = default)
    {
        var stats = await Task.WhenAll(status.Members.Select(m => NodeStatsAsync(m.Address, ct))).ConfigureAwait(false);
        return status.Members.Select((m, i) => new NodeView(m, stats[i])).ToList();
    }

    /// <summary>True when every member is up, no change is in progress, and there are <paramref name="nodes"/> members.</summary>
    public static bool Settled(StatusReply status, int nodes) =>
        !status.InTransition && status.Members.Count == nodes && status.Members.All(m => m.State == MemberState.Up);

    /// <summary>
    /// Polls the manager until <paramref name="condition"/> holds; throws naming <paramref name="what"/>
    /// at the deadline, or at once with its message when <paramref name="failed"/> reports one (a
    /// process being waited for has exited).
    /// </summary>
    public static async Task<StatusReply> WaitForAsync(string managerAddress, Func<StatusReply, bool> condition, TimeSpan timeout, string what,
        Func<string?>? failed = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        string last = "no answer";
        while (DateTime.UtcNow < deadline)
        {
            if (failed?.Invoke() is { } failure)
                throw new CliException($"{failure} (while waiting for {what})", 1);
            try
            {
                var status = (StatusReply)await RequestAsync(managerAddress, new StatusRequest(), RequestTimeout).ConfigureAwait(false);
                if (condition(status))
                    return status;
                last = $"{status.Members.Count} members, {status.Members.Count(m => m.State == MemberState.Up)} up, in transition: {status.InTransition}";
            }
            catch (Exception e) when (e is IOException or TimeoutException)
            {
                last = e.Message;
            }
            await Task.Delay(100).ConfigureAwait(false); // Status polling: the manager has no push channel to the CLI.
        }
        throw new CliException($"timed out after {timeout.TotalSeconds:0} s waiting for {what} (last seen: {last})", 1);
    }

    public static MemberStatus FindMember(StatusReply status, string id)
    {
        if (!NodeId.TryParse(id, out var node))
            throw new CliException($"'{id}' is not a node id: use an id that 'gtstore status' lists, like server3", 2);
        return status.Members.FirstOrDefault(m => m.Node == node)
            ?? throw new CliException($"{node} is not a member; members: {string.Join(", ", status.Members.Select(m => m.Node))}", 1);
    }
}
