using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary>
/// Issue 3, item 5: "Deletes are tombstones, purged only once every replica holds them", with the
/// real binary: deletes leave tombstones on every replica, purge rounds remove them after the grace,
/// and the deleted keys stay deleted while the live ones keep their values.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed class TombstoneTests(ITestOutputHelper output)
{
    private const int Nodes = 4, Replicas = 3, Keys = 6, Deleted = 3;

    [Fact(Timeout = 120_000)]
    public async Task Deleted_keys_tombstones_are_purged_from_every_replica_after_the_grace_and_stay_deleted()
    {
        // The smallest grace the defaults allow (request timeout + 2 x failure timeout).
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "4", "--rep", "3", "--tombstone-grace-ms", "6000");
        for (var i = 0; i < Keys; i++)
            await cluster.RunOkAsync("client", "--put", Key(i), "--val", $"v-{i}");
        for (var i = 0; i < Deleted; i++)
            await cluster.RunOkAsync("client", "--delete", Key(i));

        // Right after the deletes every replica still holds a tombstone: N copies of every key.
        var before = await cluster.StatusAsync();
        Assert.Equal(Replicas * Keys, TestCluster.KeySum(before));
        Assert.Equal(0, Purged(before));

        var after = await cluster.WaitForStatusAsync(
            s => TestCluster.KeySum(s) == Replicas * (Keys - Deleted) && Purged(s) == Replicas * Deleted,
            $"the {Deleted} tombstones purged from all {Replicas} replicas", TimeSpan.FromSeconds(60));
        output.WriteLine($"purged: {string.Join(", ", TestCluster.Nodes(after).Select(n => $"{n["id"]}={n["tombstonesPurged"]}"))}");

        for (var i = 0; i < Deleted; i++)
        {
            var read = await cluster.RunAsync("client", "--get", Key(i));
            Assert.Equal(1, read.ExitCode);
            Assert.Contains("not found", read.Stderr);
        }
        for (var i = Deleted; i < Keys; i++)
            Assert.StartsWith($"{Key(i)}, v-{i}, ", (await cluster.RunOkAsync("client", "--get", Key(i))).Stdout.Trim());

        // A purged key written again is an ordinary new write.
        await cluster.RunOkAsync("client", "--put", Key(0), "--val", "again");
        Assert.StartsWith($"{Key(0)}, again, ", (await cluster.RunOkAsync("client", "--get", Key(0))).Stdout.Trim());
        cluster.Passed();
    }

    private static string Key(int i) => $"tomb-{i}";

    private static long Purged(JsonObject status) =>
        TestCluster.Nodes(status).Sum(n => n["tombstonesPurged"]?.GetValue<long>() ?? 0);
}
