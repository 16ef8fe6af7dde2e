using System.Text;
using GTStore.Hosting;

namespace GTStore.Node;

/// <summary>
/// The layout version of a node's data directory, kept in its <c>FORMAT</c> file. A build refuses a
/// directory of another version instead of serving it: keys written under another placement sit
/// at ring hashes this build never looks at, and would read as missing.
/// </summary>
public static class DataFormat
{
    /// <summary>
    /// 2: a key's ring hash starts with its Redis Cluster slot (<see cref="Core.KeyHash"/>). Data
    /// directories written before this file existed used version 1 (XXH3 of the key alone).
    /// </summary>
    public const int Version = 2;

    private const string Prefix = "gtstore-data ";

    public static string PathOf(string dataDirectory) => Path.Combine(dataDirectory, "FORMAT");

    /// <summary>
    /// Accepts a directory of this version, stamps one that holds no node data yet (no identity, no
    /// database; a log file may be there) with it, and refuses anything else.
    /// </summary>
    /// <exception cref="InvalidDataException">The directory holds data of another (or an unknown) version; the message says what to do.</exception>
    public static void CheckOrStamp(string dataDirectory)
    {
        var path = PathOf(dataDirectory);
        if (File.Exists(path))
        {
            var text = File.ReadAllText(path).Trim();
            if (text == Prefix + Version)
                return;
            var found = text.StartsWith(Prefix, StringComparison.Ordinal) ? "version " + text[Prefix.Length..] : $"'{Truncate(text)}'";
            throw new InvalidDataException(
                $"data directory {dataDirectory} has data format {found}; this build reads only version {Version}. " +
                "Start the node on an empty directory (the cluster re-replicates its keys to it) or use the build that wrote it.");
        }
        if (File.Exists(NodeHost.IdentityPath(dataDirectory)) || Directory.Exists(NodeHost.DatabasePath(dataDirectory)))
        {
            throw new InvalidDataException(
                $"data directory {dataDirectory} holds a node's data but no FORMAT file: it was written before data format {Version} " +
                "(keys placed by Redis Cluster slot), and its keys would read as missing. Start the node on an empty directory " +
                "(the cluster re-replicates its keys to it) or move the directory away.");
        }
        DurableFile.WriteAtomically(path, Encoding.ASCII.GetBytes(Prefix + Version + "\n"));
    }

    private static string Truncate(string text) => text.Length <= 40 ? text : text[..40] + "...";
}
