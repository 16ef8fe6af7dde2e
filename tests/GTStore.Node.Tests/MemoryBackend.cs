using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Node.Resp;

namespace GTStore.Node.Tests;

/// <summary>
/// A <see cref="RespBackend"/> over a dictionary: lets the RESP server be tested with real
/// clients and no cluster. <see cref="Hook"/> runs before each request, to delay, block or fail it.
/// </summary>
internal sealed class MemoryBackend
{
    private readonly Dictionary<string, byte[]> _data = [];
    private long _requests;

    /// <summary>Runs before a request is applied; its result, when not null, is the reply instead.</summary>
    public Func<ClientRequest, Task<ClientReply?>>? Hook { get; set; }

    public long Requests => Interlocked.Read(ref _requests);

    public int Count
    {
        get
        {
            lock (_data)
            {
                return _data.Count;
            }
        }
    }

    /// <summary>What CLUSTER SLOTS / NODES / INFO / MYID report; null: the server has no cluster support.</summary>
    public RespClusterView? ClusterView { get; set; }

    public RespBackend Backend(int keyBytesMax = Limits.KeyBytesMaxDefault, int valueBytesMax = Limits.ValueBytesMaxDefault) => new()
    {
        Execute = ExecuteAsync,
        Cluster = ClusterView is { } view ? _ => Task.FromResult(view) : null,
        Stats = _ => Task.FromResult(new NodeStatsReply(new NodeId(7), Environment.ProcessId, Count, 3, false, "memory", Hints: 4, Handovers: 2)),
        KeyBytesMax = keyBytesMax,
        ValueBytesMax = valueBytesMax,
        NodeId = "7",
    };

    public byte[]? Get(byte[] key)
    {
        lock (_data)
        {
            return _data.GetValueOrDefault(Convert.ToHexString(key));
        }
    }

    private async Task<ClientReply> ExecuteAsync(ClientRequest request, CancellationToken ct)
    {
        Interlocked.Increment(ref _requests);
        if (Hook is { } hook && await hook(request).ConfigureAwait(false) is { } replaced)
        {
            return replaced;
        }

        return Apply(request);
    }

    private ClientReply Apply(ClientRequest request)
    {
        string key = Convert.ToHexString(request.Key);
        lock (_data)
        {
            switch (request.Op)
            {
                case ClientOp.Get:
                    return _data.TryGetValue(key, out var value)
                        ? new ClientReply(ReplyStatus.Ok, new NodeId(7), new VersionedValue(default, value), null)
                        : new ClientReply(ReplyStatus.NotFound, new NodeId(7), null, null);
                case ClientOp.Put:
                    _data[key] = request.Value!;
                    return new ClientReply(ReplyStatus.Ok, new NodeId(7), null, null);
                default:
                    _data.Remove(key);
                    return new ClientReply(ReplyStatus.Ok, new NodeId(7), null, null);
            }
        }
    }
}
