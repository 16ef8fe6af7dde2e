using GTStore.Core;
using GTStore.Node.Resp;

namespace GTStore.Node.Tests;

/// <summary>
/// CLUSTER SLOTS / NODES / INFO / MYID / KEYSLOT: what cluster-aware Redis clients read to send
/// each key to a node that replicates it.
/// </summary>
public sealed class RespClusterTests
{
    private static readonly RespClusterView TwoNodes = new(
        Epoch: 9,
        Nodes:
        [
            new RespClusterNode(new NodeId(1), "127.0.0.1", 7001, Myself: true, Suspect: false),
            new RespClusterNode(new NodeId(2), "127.0.0.1", 7002, Myself: false, Suspect: true),
        ],
        Slots:
        [
            new SlotRange(0, 99, [new NodeId(1), new NodeId(2)]),
            new SlotRange(100, 100, [new NodeId(2), new NodeId(1)]),
            new SlotRange(101, KeySlot.Count - 1, [new NodeId(1), new NodeId(2)]),
        ]);

    private const string Id1 = "0000000000000000000000000000000000000001";
    private const string Id2 = "0000000000000000000000000000000000000002";

    [Fact]
    public async Task Keyslot_is_answered_without_a_cluster_and_the_rest_say_cluster_support_is_disabled()
    {
        await using var server = RespServerTests.Start(new MemoryBackend());
        await using var client = await RawClient.ConnectAsync(server.Address);

        await client.SendAsync("CLUSTER KEYSLOT foo\r\n");
        Assert.Equal(":12182", await client.ReadReplyAsync());
        await client.SendAsync("CLUSTER KEYSLOT {user1000}.following\r\n");
        Assert.Equal($":{KeySlot.Of("user1000"u8)}", await client.ReadReplyAsync());
        await client.SendAsync("CLUSTER SLOTS\r\n");
        Assert.Equal("-ERR This instance has cluster support disabled", await client.ReadReplyAsync());
        await client.SendAsync("CLUSTER FAILOVER\r\n");
        Assert.Equal("-ERR unknown subcommand 'FAILOVER'. Try CLUSTER HELP.", await client.ReadReplyAsync());
        await client.SendAsync("CLUSTER KEYSLOT\r\n");
        Assert.Equal("-ERR wrong number of arguments for 'cluster|keyslot' command", await client.ReadReplyAsync());
        await client.SendAsync("PING\r\n");
        Assert.Equal("+PONG", await client.ReadReplyAsync());
    }

    [Fact]
    public async Task Slots_nodes_info_and_myid_describe_the_view()
    {
        await using var server = RespServerTests.Start(new MemoryBackend { ClusterView = TwoNodes });
        await using var client = await RawClient.ConnectAsync(server.Address);

        await client.SendAsync("CLUSTER SLOTS\r\n");
        Assert.Equal(
            $"*[*[:0, :99, *[$127.0.0.1, :7001, ${Id1}], *[$127.0.0.1, :7002, ${Id2}]], "
            + $"*[:100, :100, *[$127.0.0.1, :7002, ${Id2}], *[$127.0.0.1, :7001, ${Id1}]], "
            + $"*[:101, :16383, *[$127.0.0.1, :7001, ${Id1}], *[$127.0.0.1, :7002, ${Id2}]]]",
            await client.ReadReplyAsync());

        await client.SendAsync("CLUSTER NODES\r\n");
        Assert.Equal(
            $"${Id1} 127.0.0.1:7001@0 myself,master - 0 0 9 connected 0-99 101-16383\n"
            + $"{Id2} 127.0.0.1:7002@0 master,fail? - 0 0 9 connected 100\n",
            await client.ReadReplyAsync());

        await client.SendAsync("CLUSTER INFO\r\n");
        string info = await client.ReadReplyAsync();
        Assert.Contains("cluster_state:ok\r\n", info);
        Assert.Contains("cluster_slots_assigned:16384\r\n", info);
        Assert.Contains("cluster_known_nodes:2\r\n", info);
        Assert.Contains("cluster_current_epoch:9\r\n", info);

        await client.SendAsync("CLUSTER MYID\r\n");
        Assert.Equal("$" + Id1, await client.ReadReplyAsync());
    }
}
