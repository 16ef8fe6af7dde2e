using System.Collections.Concurrent;
using System.Globalization;
using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Hosting;
using GTStore.Node.Resp;
using GTStore.Protocol;

namespace GTStore.Node;

// The cluster as Redis Cluster clients see it (RESP CLUSTER SLOTS / NODES / INFO / MYID).
public sealed partial class NodeHost
{
    /// <summary>How long a peer has to say where it serves RESP before it is left out of the view.</summary>
    private static readonly TimeSpan RespAddressTimeout = TimeSpan.FromSeconds(1);

    /// <summary>Peers' RESP addresses, learnt from their stats, by node and peer address.</summary>
    private readonly ConcurrentDictionary<(NodeId Node, string Peer), string> _respAddresses = new();

    /// <summary>
    /// The current ring as slots and nodes, with every node's RESP address. A peer whose RESP
    /// address cannot be learnt (down, or serving none) is left out of the view; a slot left with
    /// no listed replica is given to this node, which serves any key by forwarding it.
    /// </summary>
    public async Task<RespClusterView> ClusterViewAsync(CancellationToken ct)
    {
        var snapshot = new TaskCompletionSource<(Ring Ring, IReadOnlyList<SlotRange> Slots, HashSet<NodeId> Suspects)>(
            TaskCreationOptions.RunContinuationsAsynchronously);
        await _loop!.PostAsync(now => snapshot.TrySetResult(
            (_machine.Current, _machine.SlotMap(now), [.. _machine.Current.Members.Keys.Where(n => _machine.IsSuspected(n, now))]))).ConfigureAwait(false);
        var (ring, slots, suspects) = await snapshot.Task.WaitAsync(ct).ConfigureAwait(false);

        var resolved = await Task.WhenAll(ring.Members.Select(async member =>
            (Node: member.Key, Resp: await RespAddressOfAsync(member.Key, member.Value, ct).ConfigureAwait(false)))).ConfigureAwait(false);
        var nodes = new List<RespClusterNode>();
        foreach (var (node, resp) in resolved)
        {
            if (resp is not null && TrySplit(resp, out var host, out var port))
                nodes.Add(new RespClusterNode(node, host, port, node == Id, suspects.Contains(node)));
        }
        var listed = nodes.Select(n => n.Node).ToHashSet();
        var ranges = slots.Select(r =>
        {
            var replicas = r.Replicas.Where(listed.Contains).ToArray();
            return r with { Replicas = replicas.Length > 0 ? replicas : [Id] };
        }).ToList();
        return new RespClusterView(ring.Epoch, nodes, ranges);
    }

    private async Task<string?> RespAddressOfAsync(NodeId node, string peerAddress, CancellationToken ct)
    {
        if (node == Id)
            return _resp?.Address;
        if (_respAddresses.TryGetValue((node, peerAddress), out var known))
            return known;
        try
        {
            var frame = await _connections.RequestAsync(peerAddress, MessageCodec.TypeOf(new NodeStatsRequest()),
                MessageCodec.Encode(new NodeStatsRequest()), RespAddressTimeout, ct).ConfigureAwait(false);
            if (MessageCodec.Decode(frame.Type, frame.Payload.Span) is NodeStatsReply { Resp.Length: > 0 } stats)
                return _respAddresses[(node, peerAddress)] = stats.Resp;
        }
        catch (Exception e) when (e is IOException or TimeoutException)
        {
            HostLog.PeerUnreachable(_logger, node.ToString(), peerAddress, e.Message);
        }
        return null;
    }

    private static bool TrySplit(string address, out string host, out int port)
    {
        var colon = address.LastIndexOf(':');
        host = colon > 0 ? address[..colon] : "";
        port = 0;
        return colon > 0 && int.TryParse(address.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port);
    }
}
