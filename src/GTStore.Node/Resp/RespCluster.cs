using System.Globalization;
using System.Text;
using GTStore.Core;
using GTStore.Protocol.Resp;

namespace GTStore.Node.Resp;

/// <summary>One node as Redis Cluster clients see it: every GTStore node is a master of the slots it is first replica of.</summary>
/// <param name="Suspect">The node misses heartbeats: shown as <c>fail?</c> and listed after the live replicas of its slots.</param>
public sealed record RespClusterNode(NodeId Node, string Host, int Port, bool Myself, bool Suspect)
{
    /// <summary>The node's 40-character cluster id (its node number in hex).</summary>
    public string Id { get; } = RespCluster.IdOf(Node);
}

/// <summary>
/// The cluster as CLUSTER SLOTS / NODES / INFO report it. <see cref="Slots"/> covers every slot,
/// each with the nodes that replicate it, live ones first; every node listed there is in
/// <see cref="Nodes"/>.
/// </summary>
public sealed record RespClusterView(long Epoch, IReadOnlyList<RespClusterNode> Nodes, IReadOnlyList<SlotRange> Slots);

/// <summary>
/// CLUSTER subcommands, enough for cluster-aware clients (redis-cli -c, redis-benchmark
/// --cluster, client libraries) to send each key to a node that replicates it. GTStore has no
/// MOVED redirections: any node serves any key, forwarding it when it is not a replica, so a
/// client with a stale map is slower, never wrong.
/// </summary>
internal static class RespCluster
{
    public static string IdOf(NodeId node) => node.Value.ToString("x40", CultureInfo.InvariantCulture);

    /// <summary>The subcommand's arity (counting CLUSTER), or 0 when it is not one we answer.</summary>
    public static int Arity(string subcommand) => subcommand switch
    {
        "SLOTS" or "NODES" or "INFO" or "MYID" => 2,
        "KEYSLOT" => 3,
        _ => 0,
    };

    /// <summary>Answers the subcommands that need no view of the cluster; null for the others.</summary>
    public static RespReply? Local(string subcommand, RespCommand command) => subcommand switch
    {
        "KEYSLOT" => RespReply.Integer(KeySlot.Of(command[2])),
        _ => null,
    };

    public static RespReply Answer(string subcommand, RespClusterView view) => subcommand switch
    {
        "SLOTS" => Slots(view),
        "NODES" => RespReply.Text(Nodes(view)),
        "INFO" => RespReply.Text(Info(view)),
        "MYID" => RespReply.Text(view.Nodes.Single(n => n.Myself).Id),
        _ => throw new ArgumentException($"CLUSTER {subcommand} is not answered from a view", nameof(subcommand)),
    };

    private static RespReply Slots(RespClusterView view)
    {
        var byNode = view.Nodes.ToDictionary(n => n.Node);
        return RespReply.Array([.. view.Slots.Select(range =>
        {
            var nodes = range.Replicas.Select(r => byNode[r]).ToList();
            var items = new RespReply[2 + nodes.Count];
            items[0] = RespReply.Integer(range.First);
            items[1] = RespReply.Integer(range.Last);
            for (var i = 0; i < nodes.Count; i++)
                items[2 + i] = RespReply.Array([RespReply.Text(nodes[i].Host), RespReply.Integer(nodes[i].Port), RespReply.Text(nodes[i].Id)]);
            return RespReply.Array(items);
        })]);
    }

    /// <summary>CLUSTER NODES: one line per node, its slots being those it is listed first for.</summary>
    private static string Nodes(RespClusterView view)
    {
        var text = new StringBuilder();
        foreach (var node in view.Nodes)
        {
            var flags = (node.Myself ? "myself," : "") + "master" + (node.Suspect ? ",fail?" : "");
            text.Append(CultureInfo.InvariantCulture, $"{node.Id} {node.Host}:{node.Port}@0 {flags} - 0 0 {view.Epoch} connected");
            foreach (var range in view.Slots.Where(r => r.Replicas[0] == node.Node))
                text.Append(range.First == range.Last
                    ? string.Create(CultureInfo.InvariantCulture, $" {range.First}")
                    : string.Create(CultureInfo.InvariantCulture, $" {range.First}-{range.Last}"));
            text.Append('\n');
        }
        return text.ToString();
    }

    private static string Info(RespClusterView view)
    {
        var masters = view.Nodes.Count(n => view.Slots.Any(r => r.Replicas[0] == n.Node));
        var pfail = view.Slots.Where(r => r.Replicas.All(n => view.Nodes.First(x => x.Node == n).Suspect)).Sum(r => r.Last - r.First + 1);
        return string.Create(CultureInfo.InvariantCulture,
            $"cluster_state:ok\r\ncluster_slots_assigned:{KeySlot.Count}\r\ncluster_slots_ok:{KeySlot.Count - pfail}\r\n"
            + $"cluster_slots_pfail:{pfail}\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{view.Nodes.Count}\r\ncluster_size:{masters}\r\n"
            + $"cluster_current_epoch:{view.Epoch}\r\ncluster_my_epoch:{view.Epoch}\r\n");
    }
}
