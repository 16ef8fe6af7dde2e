using System.Text.Json;
using System.Text.Json.Nodes;
using GTStore.Core.Messages;
using Spectre.Console;

namespace GTStore.Cli;

/// <summary>How <c>status</c> prints: a table for people, one JSON object for programs.</summary>
public static class Output
{
    public static string StatusJson(ClusterFile file, StatusReply status, IReadOnlyList<NodeView> nodes)
    {
        var json = new JsonObject
        {
            ["manager"] = new JsonObject { ["pid"] = file.ManagerPid, ["address"] = file.ManagerAddress },
            ["replication"] = status.Config.ReplicationFactor,
            ["readQuorum"] = status.Config.ReadQuorum,
            ["writeQuorum"] = status.Config.WriteQuorum,
            ["tokensPerNode"] = status.Config.TokensPerNode,
            ["transport"] = file.Transport,
            ["epoch"] = status.Epoch,
            ["inTransition"] = status.InTransition,
            ["nodes"] = new JsonArray(nodes.Select(n => (JsonNode)new JsonObject
            {
                ["id"] = n.Member.Node.ToString(),
                ["pid"] = n.Member.Pid,
                ["address"] = n.Member.Address,
                ["state"] = n.State,
                ["tokens"] = n.Member.Tokens,
                ["keys"] = n.Stats?.KeyCount,
                ["tombstones"] = n.Stats?.Tombstones,
                ["engine"] = n.Stats?.Engine,
                ["hints"] = n.Stats?.Hints,
                ["handovers"] = n.Stats?.Handovers,
                ["tombstonesPurged"] = n.Stats?.TombstonesPurged,
                ["requestsCoordinated"] = n.Stats?.RequestsCoordinated,
                ["requestsForwarded"] = n.Stats?.RequestsForwarded,
                ["valueCacheHits"] = n.Stats?.ValueCacheHits,
                ["valueCacheMisses"] = n.Stats?.ValueCacheMisses,
                ["resp"] = string.IsNullOrEmpty(n.Stats?.Resp) ? null : n.Stats.Resp,
            }).ToArray()),
        };
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
    }

    public static void StatusTable(ClusterFile file, StatusReply status, IReadOnlyList<NodeView> nodes)
    {
        var c = status.Config;
        AnsiConsole.MarkupLine($"manager pid {file.ManagerPid} at [bold]{Markup.Escape(file.ManagerAddress)}[/]  " +
                               $"N={c.ReplicationFactor} R={c.ReadQuorum} W={c.WriteQuorum} V={c.TokensPerNode}  epoch {status.Epoch}" +
                               (status.InTransition ? "  [yellow](membership change in progress)[/]" : ""));
        var table = new Table().AddColumns("id", "pid", "address", "state", "tokens", "keys", "resp");
        foreach (var n in nodes)
        {
            var state = n.State == "up" ? "[green]up[/]" : $"[yellow]{n.State}[/]";
            table.AddRow(n.Member.Node.ToString(), n.Member.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Markup.Escape(n.Member.Address), state, n.Member.Tokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
                n.Stats?.KeyCount.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-",
                string.IsNullOrEmpty(n.Stats?.Resp) ? "-" : n.Stats.Resp);
        }
        AnsiConsole.Write(table);
        if (nodes.Count < c.ReplicationFactor)
            AnsiConsole.MarkupLine($"[yellow]{nodes.Count} of the {c.ReplicationFactor} nodes that N={c.ReplicationFactor} needs: requests are refused[/]");
    }
}
