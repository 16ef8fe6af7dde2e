using GTStore.Core;
using GTStore.Core.Messages;

namespace GTStore.Node.Resp;

/// <summary>
/// What the RESP server needs from the node it fronts, as delegates so that tests can run the
/// server over an in-memory map. In a node, <see cref="Execute"/> is <c>NodeHost.ExecuteAsync</c>
/// (the same forwarder and quorum path as the native client) and <see cref="Stats"/> is
/// <c>NodeHost.StatsAsync</c>.
/// </summary>
public sealed class RespBackend
{
    /// <summary>Runs one get, put or delete. The token is cancelled when the client's connection closes.</summary>
    public required Func<ClientRequest, CancellationToken, Task<ClientReply>> Execute { get; init; }

    /// <summary>This node's own counts (INFO, DBSIZE).</summary>
    public required Func<CancellationToken, Task<NodeStatsReply>> Stats { get; init; }

    /// <summary>The cluster as Redis Cluster clients see it (CLUSTER SLOTS, NODES, INFO, MYID); null: no cluster support.</summary>
    public Func<CancellationToken, Task<RespClusterView>>? Cluster { get; init; }

    /// <summary>Largest key accepted, in bytes; a longer one gets an error naming the limit.</summary>
    public int KeyBytesMax { get; init; } = Limits.KeyBytesMaxDefault;

    /// <summary>Largest value accepted, in bytes; a longer one gets an error naming the limit.</summary>
    public int ValueBytesMax { get; init; } = Limits.ValueBytesMaxDefault;

    /// <summary>The node's id as shown by INFO.</summary>
    public string NodeId { get; init; } = "";
}
