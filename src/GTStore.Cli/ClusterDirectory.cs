using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using GTStore.Core;

namespace GTStore.Cli;

/// <summary>A node process started by the CLI: its slot (directory), pid and listen address as launched.</summary>
public sealed record LaunchedNode(int Slot, int Pid, string Listen);

/// <summary>What <c>gtstore start</c> records in the cluster directory (<c>cluster.json</c>).</summary>
public sealed record ClusterFile
{
    public required string Transport { get; init; }
    public required string ManagerAddress { get; init; }
    public required int ManagerPid { get; init; }
    public required ClusterConfig Config { get; init; }
    public required string SocketDirectory { get; init; }
    public string Engine { get; init; } = "rocksdb";
    public string Fsync { get; init; } = "always";
    /// <summary>MiB of each RocksDB node's value cache.</summary>
    public int ValueCacheMb { get; init; } = (int)(Storage.RocksDbEngine.ValueCacheBytes >> 20);
    /// <summary>CPU scheduling policy of the node processes (<c>--scheduling</c>: batch or normal).</summary>
    public string Scheduling { get; init; } = "batch";
    /// <summary>Redis protocol: node in slot i listens on 127.0.0.1:RespPortBase+i-1; 0 means any free port.</summary>
    public int RespPortBase { get; init; }
    public List<LaunchedNode> Nodes { get; init; } = [];
}

/// <summary>
/// The cluster directory (<c>--dir</c>, default <c>./gtstore-data</c> or <c>GTSTORE_DIR</c>):
/// <c>cluster.json</c>, <c>manager/</c> (state, address, log) and <c>nodes/N/</c> (data, log).
/// Unix sockets live in <c>sock/</c>, or under /tmp when that path would pass the 108-byte limit.
/// </summary>
public sealed class ClusterDirectory(string path)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    public const string DefaultPath = "gtstore-data";

    public string Root { get; } = Path.GetFullPath(path);

    public string ClusterFilePath => Path.Combine(Root, "cluster.json");

    public string ManagerDirectory => Path.Combine(Root, "manager");

    public string ManagerAddressFile => Path.Combine(ManagerDirectory, "address");

    public string ManagerLog => Path.Combine(ManagerDirectory, "manager.log");

    public string NodeDirectory(int slot) => Path.Combine(Root, "nodes", slot.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public string NodeLog(int slot) => Path.Combine(NodeDirectory(slot), "node.log");

    public static ClusterDirectory FromOption(string? option) =>
        new(option ?? Environment.GetEnvironmentVariable("GTSTORE_DIR") ?? DefaultPath);

    /// <summary>Where this cluster's Unix sockets go: short enough for the 108-byte path limit.</summary>
    public string ChooseSocketDirectory()
    {
        var local = Path.Combine(Root, "sock");
        if (Encoding.UTF8.GetByteCount(Path.Combine(local, "node-9999.sock")) < 100)
            return local;
        var tag = Convert.ToHexStringLower(XxHash3.Hash(Encoding.UTF8.GetBytes(Root)))[..12];
        return Path.Combine(Path.GetTempPath(), "gtstore-" + tag);
    }

    public ClusterFile? Read()
    {
        if (!File.Exists(ClusterFilePath))
            return null;
        return JsonSerializer.Deserialize<ClusterFile>(File.ReadAllText(ClusterFilePath), Json);
    }

    public void Write(ClusterFile file)
    {
        Directory.CreateDirectory(Root);
        var temporary = ClusterFilePath + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(file, Json));
        File.Move(temporary, ClusterFilePath, overwrite: true);
    }

    /// <summary>The cluster file, or a usage error saying no cluster was started here.</summary>
    public ClusterFile Require() =>
        Read() ?? throw new CliException($"no cluster in {Root}: start one with 'gtstore start --nodes N --rep K' (or pass --dir)", 1);
}

/// <summary>An error to print on stderr with an exit code (2 for usage errors).</summary>
public sealed class CliException(string message, int exitCode) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
