using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using GTStore.Core.Messages;
using GTStore.Protocol.Resp;

namespace GTStore.Node.Resp;

/// <summary>
/// The introspection commands (INFO, COMMAND, CONFIG GET, HELLO, CLIENT INFO): what clients and
/// tools ask before they start. GTStore presents itself as a standalone Redis 7.0.0 so that
/// version checks pass (<c>redis_version:7.0.0</c>, a plain version that every client parses;
/// <c>server_name:gtstore</c> and <c>gtstore_version</c> say what it really is).
/// </summary>
internal static class RespInfo
{
    /// <summary>The Redis version GTStore claims: the command set and replies follow Redis 7.0.</summary>
    public const string RedisVersion = "7.0.0";

    private static readonly string[] DefaultSections = ["server", "clients", "memory", "persistence", "replication", "cluster", "keyspace", "gtstore"];

    private static readonly string GTStoreVersion =
        typeof(RespInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>INFO sections asked for, lower case; the default set when none.</summary>
    public static SectionSet Sections(RespCommand command)
    {
        if (command.Count == 1)
        {
            return new SectionSet(DefaultSections);
        }

        var names = new List<string>();
        for (int i = 1; i < command.Count; i++)
        {
            string name = RespErrors.Text(command[i]).ToLowerInvariant();
            if (name is "all" or "everything" or "default")
            {
                names.AddRange(DefaultSections);
            }
            else
            {
                names.Add(name);
            }
        }

        return new SectionSet([.. names.Distinct()]);
    }

    /// <summary>The keys a node holds that are not deleted: its entries less its tombstones (DBSIZE, INFO keyspace).</summary>
    public static long LiveKeys(NodeStatsReply? stats) => stats is null ? 0 : Math.Max(0, stats.KeyCount - stats.Tombstones);

    public static string Info(SectionSet sections, RespServer server, NodeStatsReply? stats)
    {
        var text = new StringBuilder();
        foreach (var section in DefaultSections.Where(sections.Names.Contains))
        {
            if (text.Length > 0)
            {
                text.Append("\r\n");
            }

            AppendSection(text, section, server, stats);
        }

        return text.ToString();
    }

    private static void AppendSection(StringBuilder text, string section, RespServer server, NodeStatsReply? stats)
    {
        long uptimeSeconds = (Environment.TickCount64 - server.StartedMs) / 1000;
        switch (section)
        {
            case "server":
                text.Append("# Server\r\n");
                Field(text, "redis_version", RedisVersion);
                Field(text, "redis_mode", "standalone");
                Field(text, "server_name", "gtstore");
                Field(text, "gtstore_version", GTStoreVersion);
                Field(text, "os", RuntimeInformation.OSDescription);
                Field(text, "arch_bits", (IntPtr.Size * 8).ToString(CultureInfo.InvariantCulture));
                Field(text, "process_id", Environment.ProcessId);
                Field(text, "run_id", server.RunId);
                Field(text, "tcp_port", server.Port);
                Field(text, "uptime_in_seconds", uptimeSeconds);
                Field(text, "uptime_in_days", uptimeSeconds / 86_400);
                break;
            case "clients":
                text.Append("# Clients\r\n");
                Field(text, "connected_clients", server.ConnectionCount);
                Field(text, "maxclients", RespServer.ConnectionsMax);
                break;
            case "memory":
                text.Append("# Memory\r\n");
                Field(text, "used_memory", GC.GetTotalMemory(forceFullCollection: false));
                Field(text, "used_memory_rss", Environment.WorkingSet);
                Field(text, "maxmemory", 0);
                // The managed heap's traffic: bytes allocated since start and collections per generation.
                Field(text, "gc_allocated_bytes", GC.GetTotalAllocatedBytes(precise: false));
                Field(text, "gc_gen0_collections", GC.CollectionCount(0));
                Field(text, "gc_gen1_collections", GC.CollectionCount(1));
                Field(text, "gc_gen2_collections", GC.CollectionCount(2));
                // What the heap holds from the OS at the last collection, and how much of it lies
                // free between objects: RSS beyond the committed bytes is native (RocksDB, stacks).
                var heap = GC.GetGCMemoryInfo();
                Field(text, "gc_heap_committed_bytes", heap.TotalCommittedBytes);
                Field(text, "gc_heap_fragmented_bytes", heap.FragmentedBytes);
                break;
            case "persistence":
                text.Append("# Persistence\r\n");
                Field(text, "loading", 0);
                Field(text, "aof_enabled", 0);
                break;
            case "replication":
                // GTStore replicates every key on N nodes by itself; to a Redis client each node is a master.
                text.Append("# Replication\r\n");
                Field(text, "role", "master");
                Field(text, "connected_slaves", 0);
                break;
            case "cluster":
                text.Append("# Cluster\r\n");
                Field(text, "cluster_enabled", 0);
                break;
            case "keyspace":
                // The live keys this node holds as a replica (as DBSIZE), not the cluster's total.
                text.Append("# Keyspace\r\n");
                text.Append(CultureInfo.InvariantCulture, $"db0:keys={LiveKeys(stats)},expires=0,avg_ttl=0\r\n");
                break;
            case "gtstore":
                text.Append("# GTStore\r\n");
                Field(text, "node_id", server.Backend.NodeId);
                Field(text, "node_keys", stats?.KeyCount ?? 0); // Entries held, tombstones included (status's "keys").
                Field(text, "node_tombstones", stats?.Tombstones ?? 0);
                Field(text, "ring_epoch", stats?.Epoch ?? 0);
                Field(text, "in_transition", stats?.InTransition == true ? 1 : 0);
                Field(text, "engine", stats?.Engine ?? "");
                Field(text, "hints", stats?.Hints ?? 0);
                Field(text, "handovers", stats?.Handovers ?? 0);
                Field(text, "requests_coordinated", stats?.RequestsCoordinated ?? 0);
                Field(text, "requests_forwarded", stats?.RequestsForwarded ?? 0);
                // Reads of this node's copies answered from the value cache, and those that searched
                // the write log or RocksDB: a low hit rate under a hot set says --value-cache-mb is too
                // small (with --fsync none or batch, keys written since the last table are read from
                // the log, in memory but uncached: misses).
                Field(text, "value_cache_hits", stats?.ValueCacheHits ?? 0);
                Field(text, "value_cache_misses", stats?.ValueCacheMisses ?? 0);
                Field(text, "value_cache_bytes", stats?.ValueCacheBytes ?? 0);
                Field(text, "key_bytes_max", server.Backend.KeyBytesMax);
                Field(text, "value_bytes_max", server.Backend.ValueBytesMax);
                break;
            default:
                throw new InvalidOperationException($"INFO section '{section}' has no writer");
        }
    }

    private static void Field(StringBuilder text, string name, string value) =>
        text.Append(name).Append(':').Append(value).Append("\r\n");

    private static void Field(StringBuilder text, string name, long value) =>
        text.Append(name).Append(':').Append(value.ToString(CultureInfo.InvariantCulture)).Append("\r\n");

    /// <summary>
    /// COMMAND [COUNT | LIST | INFO name... | DOCS name...]. Entries use the classic six fields
    /// (name, arity, flags, first key, last key, step); DOCS is answered with an empty map, which
    /// <c>redis-cli</c> accepts (it only loses its hints).
    /// </summary>
    public static RespReply Command(RespCommand command)
    {
        if (command.Count == 1)
        {
            return RespReply.Array([.. RespCommandTable.All.Select(CommandEntry)]);
        }

        string sub = RespErrors.Text(command[1]).ToUpperInvariant();
        switch (sub)
        {
            case "COUNT" when command.Count == 2:
                return RespReply.Integer(RespCommandTable.All.Length);
            case "LIST" when command.Count == 2:
                return RespReply.Array([.. RespCommandTable.All.Select(s => RespReply.Text(s.Name))]);
            case "INFO":
                return command.Count == 2
                    ? RespReply.Array([.. RespCommandTable.All.Select(CommandEntry)])
                    : RespReply.Array([.. command.Args.Skip(2).Select(n => RespCommandTable.Find(n) is { } s ? CommandEntry(s) : RespReply.NullArray)]);
            case "DOCS":
                return RespReply.EmptyArray;
            case "COUNT" or "LIST":
                return RespErrors.WrongArity("command|" + sub.ToLowerInvariant());
            default:
                return RespErrors.UnknownSubcommand(command[1], "COMMAND");
        }
    }

    private static RespReply CommandEntry(RespCommandSpec spec)
    {
        var flags = new List<RespReply>();
        if (spec.HasKeys)
        {
            flags.Add(RespReply.Simple(spec.Writes ? "write" : "readonly"));
        }
        else
        {
            flags.Add(RespReply.Simple("fast"));
        }

        return RespReply.Array(
        [
            RespReply.Text(spec.Name),
            RespReply.Integer(spec.Arity),
            RespReply.Array([.. flags]),
            RespReply.Integer(spec.FirstKey),
            RespReply.Integer(spec.LastKey),
            RespReply.Integer(spec.KeyStep),
        ]);
    }

    /// <summary>CONFIG GET pattern [pattern ...]: the few settings tools ask about, as name/value pairs.</summary>
    public static RespReply Config(RespCommand command, RespServer server)
    {
        string sub = RespErrors.Text(command[1]).ToUpperInvariant();
        if (sub == "SET")
        {
            return RespReply.Error("ERR CONFIG SET is not supported by GTStore");
        }

        if (sub != "GET")
        {
            return RespErrors.UnknownSubcommand(command[1], "CONFIG");
        }

        if (command.Count < 3)
        {
            return RespErrors.WrongArity("config|get");
        }

        var settings = Settings(server);
        var pairs = new List<RespReply>();
        foreach (var (name, value) in settings)
        {
            if (command.Args.Skip(2).Any(p => Glob.Matches(p, name)))
            {
                pairs.Add(RespReply.Text(name));
                pairs.Add(RespReply.Text(value));
            }
        }

        return RespReply.Array([.. pairs]);
    }

    private static (string Name, string Value)[] Settings(RespServer server) =>
    [
        ("save", ""),
        ("appendonly", "no"),
        ("databases", "1"),
        ("maxmemory", "0"),
        ("maxclients", RespServer.ConnectionsMax.ToString(CultureInfo.InvariantCulture)),
        ("timeout", "0"),
        ("port", server.Port.ToString(CultureInfo.InvariantCulture)),
        ("proto-max-bulk-len", server.Parser.BulkBytesMax.ToString(CultureInfo.InvariantCulture)),
        ("cluster-enabled", "no"),
    ];

    /// <summary>HELLO's reply: RESP2 has no maps, so the map is a flat array of pairs (as Redis).</summary>
    public static RespReply Hello(long clientId) => RespReply.Array(
    [
        RespReply.Text("server"), RespReply.Text("redis"),
        RespReply.Text("version"), RespReply.Text(RedisVersion),
        RespReply.Text("proto"), RespReply.Integer(2),
        RespReply.Text("id"), RespReply.Integer(clientId),
        RespReply.Text("mode"), RespReply.Text("standalone"),
        RespReply.Text("role"), RespReply.Text("master"),
        RespReply.Text("modules"), RespReply.EmptyArray,
    ]);

    /// <summary>One line of CLIENT LIST / CLIENT INFO, with Redis's field names.</summary>
    public static string ClientLine(RespConnection c) => string.Create(
        CultureInfo.InvariantCulture,
        $"id={c.Id} addr={c.Remote} laddr={c.Local} fd=-1 name={c.Name} age={(Environment.TickCount64 - c.ConnectedMs) / 1000} "
        + $"idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd={c.LastCommand} user=default redir=-1 resp=2 "
        + $"lib-name={c.LibraryName} lib-ver={c.LibraryVersion}\n");

    /// <summary>Redis's rule for client names: printable ASCII without spaces.</summary>
    public static bool IsClientName(byte[] name) => name.All(b => b is > (byte)' ' and <= (byte)'~');

    /// <summary>A decimal integer as Redis reads one (optional minus, digits, nothing else).</summary>
    public static bool TryParseInteger(byte[] text, out long value) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);

    /// <summary>The INFO sections asked for.</summary>
    public sealed record SectionSet(string[] Names)
    {
        public bool NeedsStats => Names.Contains("keyspace") || Names.Contains("gtstore");
    }
}
