using GTStore.Node.Tests;
using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary>
/// Redis Cluster clients against real node processes: every node answers CLUSTER NODES / SLOTS
/// with the RESP addresses of all nodes and the slots each is first replica of, so that
/// <c>redis-benchmark --cluster</c> sends every key to a node that replicates it and no request is
/// forwarded; without the map, a node forwards the writes it does not replicate.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed class RespClusterTests(ITestOutputHelper output)
{
    [RedisToolFact("redis-benchmark", Timeout = 180_000)]
    public async Task Cluster_clients_send_each_key_to_a_replica_and_any_node_reads_it_back()
    {
        await using var cluster = await TestCluster.StartAsync(output,
            "--nodes", "5", "--rep", "3", "--read-quorum", "2", "--write-quorum", "2", "--fsync", "none");
        var resp = TestCluster.Nodes(await cluster.StatusAsync()).Select(n => n["resp"]!.GetValue<string>()).ToList();
        Assert.Equal(5, resp.Count);
        var port = resp[0].Split(':')[1];

        // CLUSTER NODES lists every node at its RESP address; together they hold every slot once.
        var lines = (await RedisTools.RunAsync("redis-cli", ["-p", port, "cluster", "nodes"])).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(resp.Order(), lines.Select(l => l.Split(' ')[1].Split('@')[0]).Order());
        var slots = lines.SelectMany(l => l.Split(' ')[8..]).SelectMany(Expand).ToList();
        Assert.Equal(Enumerable.Range(0, 16384), slots.Order());
        Assert.Contains("cluster_state:ok", await RedisTools.RunAsync("redis-cli", ["-p", port, "cluster", "info"]));

        // Routed by slot: every request lands on a replica of its key.
        var before = await CountsAsync(cluster);
        output.WriteLine(await RedisTools.RunAsync("redis-benchmark", ["-h", "127.0.0.1", "-p", port, "--cluster", "-t", "set,get", "-n", "3000", "-r", "1000", "-c", "10", "-d", "16", "-q"]));
        var routed = await CountsAsync(cluster);
        Assert.True(routed.Coordinated - before.Coordinated >= 6000, $"coordinated {before.Coordinated} -> {routed.Coordinated}");
        Assert.Equal(before.Forwarded, routed.Forwarded);

        // Unrouted, all to one node: it forwards the writes it does not replicate (2 in 5 on average).
        await RedisTools.RunAsync("redis-benchmark", ["-h", "127.0.0.1", "-p", port, "-t", "set", "-n", "1000", "-r", "1000", "-c", "10", "-d", "16", "-q"]);
        var unrouted = await CountsAsync(cluster);
        Assert.InRange(unrouted.Forwarded - routed.Forwarded, 100, 900);

        // Any node serves any key through the same quorum path.
        Assert.Equal("OK", (await RedisTools.RunAsync("redis-cli", ["-p", port, "set", "{user:7}:name", "ada"])).Trim());
        foreach (var other in resp.Skip(1))
            Assert.Equal("ada", (await RedisTools.RunAsync("redis-cli", ["-p", other.Split(':')[1], "get", "{user:7}:name"])).Trim());
        cluster.Passed();
    }

    // 'start' returns once every node serves Redis clients too: a node opens its RESP port just
    // after it joins, and a script that starts a cluster and connects at once must not race it.
    // One node (with several, the ring's settling after the joins hides the race), a few times
    // over, and a connection made at once, with no status call or process start in between.
    [Fact(Timeout = 120_000)]
    public async Task Start_returns_once_every_node_accepts_redis_clients()
    {
        for (var round = 0; round < 3; round++)
        {
            var port = FreePort();
            await using var cluster = await TestCluster.StartAsync(output,
                "--nodes", "1", "--rep", "1", "--fsync", "none", "--resp-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
            using var client = new System.Net.Sockets.TcpClient();
            await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray());
            var reply = new byte[7];
            await stream.ReadExactlyAsync(reply);
            Assert.Equal("+PONG\r\n", System.Text.Encoding.ASCII.GetString(reply));
            cluster.Passed();
        }
    }

    /// <summary>A loopback port free right now (the OS's choice for a listener on port 0).</summary>
    private static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    // A deleted key stays on its replicas as a tombstone until it is purged; DBSIZE and INFO
    // keyspace count the keys a user can read, status and INFO gtstore the entries and tombstones.
    [RedisToolFact("redis-cli", Timeout = 120_000)]
    public async Task Dbsize_and_info_keyspace_do_not_count_deleted_keys()
    {
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "1", "--rep", "1");
        var port = TestCluster.Nodes(await cluster.StatusAsync()).Single()["resp"]!.GetValue<string>().Split(':')[1];
        Assert.Equal("OK", (await RedisTools.RunAsync("redis-cli", ["-p", port, "mset", "a", "1", "b", "2", "c", "3"])).Trim());
        Assert.Equal("2", (await RedisTools.RunAsync("redis-cli", ["-p", port, "del", "a", "b", "missing"])).Trim());

        Assert.Equal("1", (await RedisTools.RunAsync("redis-cli", ["-p", port, "dbsize"])).Trim());
        var info = (await RedisTools.RunAsync("redis-cli", ["-p", port, "info", "keyspace"])).ReplaceLineEndings("\r\n");
        Assert.Contains("db0:keys=1,expires=0,avg_ttl=0\r\n", info);
        var node = TestCluster.Nodes(await cluster.StatusAsync()).Single();
        Assert.Equal((3L, 2L), (node["keys"]!.GetValue<long>(), node["tombstones"]!.GetValue<long>()));
        var gtstore = (await RedisTools.RunAsync("redis-cli", ["-p", port, "info", "gtstore"])).ReplaceLineEndings("\r\n");
        Assert.Contains("node_keys:3\r\nnode_tombstones:2\r\n", gtstore);
        cluster.Passed();
    }

    private static IEnumerable<int> Expand(string range)
    {
        var parts = range.Split('-');
        var first = int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
        var last = parts.Length == 2 ? int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) : first;
        return Enumerable.Range(first, last - first + 1);
    }

    private static async Task<(long Coordinated, long Forwarded)> CountsAsync(TestCluster cluster)
    {
        var nodes = TestCluster.Nodes(await cluster.StatusAsync());
        return (nodes.Sum(n => n["requestsCoordinated"]!.GetValue<long>()), nodes.Sum(n => n["requestsForwarded"]!.GetValue<long>()));
    }
}
