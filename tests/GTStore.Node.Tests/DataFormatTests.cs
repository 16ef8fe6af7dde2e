namespace GTStore.Node.Tests;

/// <summary>
/// A node refuses a data directory whose layout it cannot read rather than serve its keys as
/// missing (<see cref="DataFormat"/>); real directories and files.
/// </summary>
public sealed class DataFormatTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gtstore-format-" + Guid.NewGuid().ToString("N"));

    public DataFormatTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_directory_without_node_data_is_stamped_with_this_version_and_then_accepted()
    {
        File.WriteAllText(Path.Combine(_dir, "node.log"), "a log line\n"); // The CLI's log is there before the node starts.
        DataFormat.CheckOrStamp(_dir);
        Assert.Equal($"gtstore-data {DataFormat.Version}\n", File.ReadAllText(DataFormat.PathOf(_dir)));
        DataFormat.CheckOrStamp(_dir);
    }

    [Theory]
    [InlineData("node.id")]
    [InlineData("db")]
    public void Node_data_without_a_format_file_is_refused_as_written_before_the_format(string left)
    {
        if (left == "db")
            Directory.CreateDirectory(Path.Combine(_dir, left));
        else
            File.WriteAllText(Path.Combine(_dir, left), "server1\n/tmp/x.sock\n");
        var e = Assert.Throws<InvalidDataException>(() => DataFormat.CheckOrStamp(_dir));
        Assert.Contains("no FORMAT file", e.Message, StringComparison.Ordinal);
        Assert.Contains(_dir, e.Message, StringComparison.Ordinal);
        Assert.Contains("empty directory", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(DataFormat.PathOf(_dir)), "a directory of unknown format was stamped");
    }

    [Theory]
    [InlineData("gtstore-data 1", "version 1")]
    [InlineData("gtstore-data 3", "version 3")]
    [InlineData("something else", "'something else'")]
    public void Another_format_is_refused_naming_both_versions(string written, string named)
    {
        File.WriteAllText(DataFormat.PathOf(_dir), written + "\n");
        var e = Assert.Throws<InvalidDataException>(() => DataFormat.CheckOrStamp(_dir));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
        Assert.Contains($"only version {DataFormat.Version}", e.Message, StringComparison.Ordinal);
        Assert.Equal(written + "\n", File.ReadAllText(DataFormat.PathOf(_dir)));
    }
}
