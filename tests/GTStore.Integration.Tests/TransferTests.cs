using System.Collections.Concurrent;
using System.Diagnostics;
using GTStore.Client;
using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary>Writes that keep coming while nodes join and leave (transfers in progress).</summary>
[Collection(ProcessesCollection.Name)]
public sealed class TransferTests(ITestOutputHelper output)
{
    /// <summary>Writers running at once, each with its own client doing one request at a time (as the seed's client does).</summary>
    private const int Writers = 2;

    /// <summary>Fewest keys written, even if the membership changes finish sooner.</summary>
    private const int KeysMin = 200;

    /// <summary>Most keys written: bounds the loop if the membership changes hang.</summary>
    private const int KeysMax = 20_000;

    /// <summary>Acknowledged writes before the first membership change starts.</summary>
    private const int WarmUpKeys = 20;

    private const int Replicas = 2;

    // DESIGN.md "Membership and transfers": "During transfer the affected ranges are pending:
    // writes go to old and new owners both, so nothing written during a transfer is lost", and the
    // invariant "after the cluster settles, each key is on exactly the N nodes of its preference
    // list, and every acknowledged write is readable." Seed, "Membership": joins and leaves
    // "donate" data. The same trace runs over Unix sockets (the seed's) and TCP (DESIGN.md
    // "Processes": "The same code and protocol serve both").
    [Theory(Timeout = 200_000)]
    [InlineData("uds")]
    [InlineData("tcp")]
    public async Task Writes_acknowledged_while_a_node_joins_and_another_leaves_are_all_readable(string transport)
    {
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "3", "--rep", "2", "--transport", transport);
        var options = new ClientOptions(cluster.ManagerAddress);
        var acknowledged = new ConcurrentDictionary<string, string>();
        var unknown = new ConcurrentDictionary<string, string>();
        var failed = new ConcurrentDictionary<string, string>();
        var next = -1;
        var ackedDuringChanges = 0;
        var changesRunning = 0;
        var changesDone = 0;
        var warmedUp = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        async Task WriteAsync()
        {
            await using var client = await GTStoreClient.InitAsync(options);
            while (true)
            {
                var i = Interlocked.Increment(ref next);
                if (i >= KeysMax || (i >= KeysMin && Volatile.Read(ref changesDone) == 1))
                    return;
                var (key, value) = ($"key-{i:D5}", $"value-{i}-{transport}");
                try
                {
                    await client.PutAsync(key, value);
                    acknowledged[key] = value;
                    if (acknowledged.Count >= WarmUpKeys)
                        warmedUp.TrySetResult();
                    if (Volatile.Read(ref changesRunning) == 1)
                        Interlocked.Increment(ref ackedDuringChanges);
                }
                catch (UnknownOutcomeException e)
                {
                    unknown[key] = e.Message;
                }
                catch (GTStoreException e) when (e is not InvalidRequestException)
                {
                    // A clear failure: allowed while membership changes (DESIGN.md "Outcomes are exact").
                    failed[key] = e.Message;
                }
            }
        }

        async Task ChangeMembershipAsync()
        {
            // Let some writes land before the first change (a writer that ends early must not leave this waiting).
            await warmedUp.Task.WaitAsync(TimeSpan.FromSeconds(60));
            Volatile.Write(ref changesRunning, 1);
            try
            {
                var added = await cluster.RunOkAsync("add-node");
                Assert.Matches(@"^server4 joined", added.Stdout.Trim());
                var left = await cluster.RunOkAsync("leave", "server1");
                Assert.StartsWith("server1 handed off its data and left", left.Stdout.Trim(), StringComparison.Ordinal);
            }
            finally
            {
                Volatile.Write(ref changesRunning, 0);
                Volatile.Write(ref changesDone, 1);
            }
        }

        var clock = Stopwatch.StartNew();
        await Task.WhenAll([ChangeMembershipAsync(), .. Enumerable.Range(0, Writers).Select(_ => Task.Run(WriteAsync))]);
        output.WriteLine($"{transport}: {acknowledged.Count} writes acknowledged ({ackedDuringChanges} while the add-node and leave ran), " +
                         $"{unknown.Count} with unknown outcome, {failed.Count} failed, in {clock.Elapsed.TotalSeconds:0.0} s");
        foreach (var (key, message) in unknown.Take(5).Concat(failed.Take(5)))
            output.WriteLine($"  {key}: {message}");
        Assert.True(ackedDuringChanges > 0, "no write was acknowledged while the membership changed; the test did not exercise a transfer");

        await cluster.WaitForStatusAsync(s => TestCluster.Settled(s, 3), "server2, server3 and server4 up with no change in progress");

        await using var reader = await GTStoreClient.InitAsync(options);
        var lost = new List<string>();
        foreach (var (key, value) in acknowledged.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var read = await reader.GetAsync(key);
            if (!read.Found || read.ValueString != value)
                lost.Add($"{key}: expected {value}, got {(read.Found ? read.ValueString : "not found")}");
        }
        Assert.True(lost.Count == 0, $"{lost.Count} of {acknowledged.Count} acknowledged writes lost:\n{string.Join('\n', lost.Take(20))}");

        // A write of unknown outcome (or a failed one) may have landed: the cluster holds it or not.
        var present = acknowledged.Count;
        foreach (var key in unknown.Keys.Concat(failed.Keys))
        {
            if ((await reader.GetAsync(key)).Found)
                present++;
        }
        // Read repair of those reads runs in the background, so wait for the count rather than read it once.
        await cluster.WaitForStatusAsync(
            s => TestCluster.Settled(s, 3) && TestCluster.KeySum(s) == Replicas * present,
            $"{Replicas} copies of each of the {present} keys present");
        cluster.Passed();
    }
}
