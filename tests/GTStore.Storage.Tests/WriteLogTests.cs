using GTStore.Core;

namespace GTStore.Storage.Tests;

/// <summary>
/// A log handed the spare parts of the one before (its records array and its table, as the
/// RocksDB engine does once a sealed log's table is in) starts empty: none of the old log's keys
/// is found in it, and its own keys are found with their values, including the key whose ring
/// hash the old log held.
/// </summary>
public sealed class WriteLogTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("gtstore-writelog-").FullName;

    [Fact]
    public void A_log_reusing_the_parts_of_the_one_before_holds_only_its_own_keys()
    {
        var spare = default(WriteLog.Spare);
        using (var first = new WriteLog(Path.Combine(_root, "first.log")))
        {
            for (ulong h = 1; h <= 1000; h++)
                first.Append(h, Key(h), Value(h, 1));
            Assert.Equal(1000, first.Count);
            spare = first.Detach();
            Assert.Equal(0, first.Count);
        }
        Assert.NotNull(spare.Records);
        Assert.NotNull(spare.Table);

        using var second = new WriteLog(Path.Combine(_root, "second.log"), spare);
        Assert.Equal(0, second.Count);
        for (ulong h = 1; h <= 1000; h++)
            Assert.False(second.TryFind(h, Key(h), out _, out _), $"key {h} of the first log found in the second");

        second.Append(7, Key(7), Value(7, 2));
        second.Append(5000, Key(5000), null);
        Assert.Equal(2, second.Count);
        Assert.True(second.TryFind(7, Key(7), out var removed, out var stored));
        Assert.False(removed);
        Assert.Equal(Value(7, 2), StoredValue.Decode(stored), VersionedValueComparer.Instance);
        Assert.True(second.TryFind(5000, Key(5000), out removed, out _));
        Assert.True(removed);
        Assert.False(second.TryFind(8, Key(8), out _, out _));
    }

    // A log of very small records grows a large table; the next log does not keep it.
    [Fact]
    public void A_table_grown_past_sixteen_megabytes_is_not_handed_on()
    {
        using var log = new WriteLog(Path.Combine(_root, "small-records.log"));
        for (ulong h = 1; h <= 700_000; h++)
            log.Append(h, Key(h), null);
        var spare = log.Detach();
        Assert.Null(spare.Table);
        Assert.NotNull(spare.Records);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static byte[] Key(ulong h) => System.Text.Encoding.ASCII.GetBytes($"key-{h}");

    private static VersionedValue Value(ulong h, long timestamp) => new(new Core.Version(timestamp, 1), System.Text.Encoding.ASCII.GetBytes($"value-{h}-{timestamp}"));

    private sealed class VersionedValueComparer : IEqualityComparer<VersionedValue>
    {
        public static readonly VersionedValueComparer Instance = new();

        public bool Equals(VersionedValue x, VersionedValue y) =>
            x.Version == y.Version && (x.Value ?? []).AsSpan().SequenceEqual(y.Value ?? []);

        public int GetHashCode(VersionedValue v) => v.Version.GetHashCode();
    }
}
