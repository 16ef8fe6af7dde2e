using System.Diagnostics;
using GTStore.Client;
using GTStore.Core;
using Spectre.Console;

namespace GTStore.Cli;

/// <summary>
/// <c>gtstore demo</c>: the seed's test application ("Client Driver Application") on a fresh
/// temporary cluster of real processes: start the manager and 2N nodes; K clients each put a key;
/// replace every original node one by one (leave with hand-off, then a new node joins); every
/// client reads its key back; nodes leave down to N and the rest is stopped.
/// </summary>
public static class DemoCommand
{
    public static async Task<int> RunAsync(ClusterConfig config, int clientCount, string transport)
    {
        var n = config.ReplicationFactor;
        var root = Path.Combine(Path.GetTempPath(), "gtstore-demo-" + Environment.ProcessId);
        var cluster = new Cluster(new ClusterDirectory(root));
        var clock = Stopwatch.StartNew();
        var clients = new List<GTStoreClient>();
        var replaced = 0;
        var left = 0;
        try
        {
            Step($"starting the manager and 2N = {2 * n} nodes (N={n} R={config.ReadQuorum} W={config.WriteQuorum}, {config.TokensPerNode} tokens each, {transport}) in {root}");
            var file = await cluster.StartAsync(2 * n, config, transport).ConfigureAwait(false);
            var originals = (await Admin.StatusAsync(file.ManagerAddress).ConfigureAwait(false)).Members.Select(m => m.Node.ToString()).ToList();

            Step($"{clientCount} clients, each putting one key");
            var options = new ClientOptions(file.ManagerAddress);
            for (var i = 0; i < clientCount; i++)
            {
                var client = await GTStoreClient.InitAsync(options).ConfigureAwait(false);
                clients.Add(client);
                var put = await client.PutAsync($"key-{i}", $"value-{i}").ConfigureAwait(false);
                Detail($"client {client.ClientId} (forwarder {client.Forwarder}): put key-{i} = value-{i}, coordinator {put.Coordinator}");
            }

            Step($"replacing the {originals.Count} original nodes one by one");
            foreach (var id in originals)
            {
                await cluster.LeaveAsync(id).ConfigureAwait(false);
                var added = await cluster.AddNodeAsync().ConfigureAwait(false);
                replaced++;
                Detail($"[{replaced}/{originals.Count}] {id} handed off its data and left; {added.Node} joined with {added.Tokens} tokens");
            }

            Step("every client reads its key back");
            var lost = new List<string>();
            for (var i = 0; i < clients.Count; i++)
            {
                try
                {
                    var read = await clients[i].GetAsync($"key-{i}").ConfigureAwait(false);
                    if (read.ValueString == $"value-{i}")
                        Detail($"client {clients[i].ClientId}: key-{i} = {read.ValueString}, coordinator {read.Coordinator}");
                    else
                        lost.Add($"key-{i}: {(read.Found ? "wrong value " + read.ValueString : "not found")}");
                }
                catch (GTStoreException e)
                {
                    lost.Add($"key-{i}: {e.Message}");
                }
            }
            foreach (var l in lost)
                AnsiConsole.MarkupLine($"  [red]LOST[/] {Markup.Escape(l)}");

            Step($"nodes leave until N = {n} remain, then the rest stops");
            var members = (await Admin.StatusAsync(file.ManagerAddress).ConfigureAwait(false)).Members.Select(m => m.Node.ToString()).ToList();
            foreach (var id in members.Take(members.Count - n))
            {
                await cluster.LeaveAsync(id).ConfigureAwait(false);
                left++;
                Detail($"{id} handed off its data and left");
            }

            Summary(clientCount, lost.Count, replaced, left, clock.Elapsed);
            return lost.Count == 0 ? 0 : 1;
        }
        finally
        {
            foreach (var c in clients)
                await c.DisposeAsync().ConfigureAwait(false);
            if (cluster.Directory.Read() is not null)
                await cluster.StopAsync().ConfigureAwait(false);
            TryDelete(root);
        }
    }

    private static void Step(string text) => AnsiConsole.MarkupLine($"[bold blue]==>[/] {Markup.Escape(text)}");

    private static void Detail(string text) => AnsiConsole.MarkupLine($"    {Markup.Escape(text)}");

    private static void Summary(int checkedKeys, int lost, int replaced, int left, TimeSpan elapsed)
    {
        var table = new Table().AddColumns("keys checked", "keys lost", "nodes replaced", "nodes left at the end", "time");
        table.AddRow(checkedKeys.ToString(System.Globalization.CultureInfo.InvariantCulture),
            lost == 0 ? "[green]0[/]" : $"[red]{lost}[/]", replaced.ToString(System.Globalization.CultureInfo.InvariantCulture),
            left.ToString(System.Globalization.CultureInfo.InvariantCulture), $"{elapsed.TotalSeconds:0.0} s");
        AnsiConsole.Write(table);
        Console.WriteLine($"keys checked: {checkedKeys}, keys lost: {lost}");
    }

    private static void TryDelete(string root)
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless.
        }
    }
}
