using System.Collections.Concurrent;
using System.Diagnostics;
using GTStore.Client;
using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary>
/// Writers that each put unique keys (one key per write, never overwritten) through their own
/// <see cref="GTStoreClient"/> until stopped, and the tally of every outcome: acknowledged,
/// unknown (in flight when something broke) or failed (a clear error: nothing was written). The
/// checker then reads every acknowledged key back: the acknowledged-but-lost count must be 0.
/// </summary>
public sealed class WriteLoad(ITestOutputHelper output, string prefix, int valueBytes)
{
    /// <summary>Pause of a writer after a failed or unknown write, so a writer facing a dead cluster does not spin.</summary>
    private static readonly TimeSpan BackoffAfterError = TimeSpan.FromMilliseconds(50);

    private readonly CancellationTokenSource _stop = new();
    private int _next = -1;

    public ConcurrentDictionary<string, string> Acknowledged { get; } = new();

    public ConcurrentDictionary<string, string> Unknown { get; } = new();

    public ConcurrentDictionary<string, string> Failed { get; } = new();

    public string ValueOf(string key) => key + "=" + new string((char)('a' + key.Length % 26), Math.Max(0, valueBytes - key.Length - 1));

    /// <summary>Starts <paramref name="writers"/> writers; the task completes once <see cref="Stop"/> was called and each has returned.</summary>
    public Task RunAsync(ClientOptions options, int writers) =>
        Task.WhenAll(Enumerable.Range(0, writers).Select(_ => Task.Run(() => WriteAsync(options))));

    public void Stop() => _stop.Cancel();

    private async Task WriteAsync(ClientOptions options)
    {
        await using var client = await GTStoreClient.InitAsync(options).ConfigureAwait(false);
        while (!_stop.IsCancellationRequested)
        {
            var key = $"{prefix}-{Interlocked.Increment(ref _next):D6}";
            var value = ValueOf(key);
            try
            {
                await client.PutAsync(key, value).ConfigureAwait(false);
                Acknowledged[key] = value;
                continue;
            }
            catch (UnknownOutcomeException e)
            {
                Unknown[key] = e.Message;
            }
            catch (Exception e) when (e is GTStoreException or IOException or TimeoutException)
            {
                Failed[key] = $"{e.GetType().Name}: {e.Message}";
            }
            try
            {
                await Task.Delay(BackoffAfterError, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> writes were acknowledged; fails the test with the tally at the deadline.</summary>
    public async Task WaitForAcknowledgedAsync(int count, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (Acknowledged.Count < count)
        {
            if (clock.Elapsed > timeout)
                throw new Xunit.Sdk.XunitException($"only {Acknowledged.Count} of {count} writes acknowledged after {timeout.TotalSeconds:0} s; {Tally()}; " +
                                                  $"last errors: {string.Join(" | ", Unknown.Values.Concat(Failed.Values).TakeLast(3))}");
            // Polling an in-process counter: the writers have no event per acknowledgement to await.
            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    public string Tally() => $"{Acknowledged.Count} acknowledged, {Unknown.Count} unknown, {Failed.Count} failed";

    /// <summary>
    /// Waits until <paramref name="nodes"/> nodes are up with no hints and exactly <paramref name="replicas"/>
    /// copies of every key present: every acknowledged key, plus the unknown or failed writes that
    /// landed. Those are read again each time the count looks settled: one that reached a single
    /// replica before a crash may read as missing at first and spread later (anti-entropy).
    /// </summary>
    public async Task WaitForReplicasAsync(TestCluster cluster, ClientOptions options, int nodes, int replicas)
    {
        var clock = Stopwatch.StartNew();
        var acknowledged = Acknowledged.Count;
        var unsure = Unknown.Keys.Concat(Failed.Keys).ToList();
        while (true)
        {
            var status = await cluster.WaitForStatusAsync(
                s => TestCluster.Settled(s, nodes) && TestCluster.Nodes(s).All(n => n["hints"]?.GetValue<long>() == 0)
                     && TestCluster.KeySum(s) is { } sum && sum % replicas == 0 && sum >= replicas * acknowledged && sum <= replicas * (acknowledged + unsure.Count),
                $"{nodes} nodes up, no hints, and {replicas} x ({acknowledged} acknowledged + up to {unsure.Count} unsure) keys",
                TestCluster.SettleTimeout - clock.Elapsed);
            await using var reader = await GTStoreClient.InitAsync(options).ConfigureAwait(false);
            var present = 0;
            foreach (var key in unsure)
            {
                if ((await reader.GetAsync(key).ConfigureAwait(false)).Found)
                    present++;
            }
            if (TestCluster.KeySum(status) == replicas * (acknowledged + present))
            {
                output.WriteLine($"{replicas} copies of each of the {acknowledged + present} keys present ({present} of {unsure.Count} unsure writes landed) after {clock.Elapsed.TotalSeconds:0.0} s");
                return;
            }
            if (clock.Elapsed > TestCluster.SettleTimeout)
                throw new Xunit.Sdk.XunitException($"the cluster holds {TestCluster.KeySum(status)} copies, not {replicas} x ({acknowledged} + {present}): {status.ToJsonString()}");
            // Polling: anti-entropy spreads a key one summary exchange at a time.
            await Task.Delay(250).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads back every acknowledged key with <paramref name="readers"/> clients at once; returns the
    /// acknowledged keys that are missing or wrong, and how many unknown or failed writes are present.
    /// </summary>
    public async Task<(List<string> Lost, int UnsureButPresent)> VerifyAsync(ClientOptions options, int readers = 4)
    {
        var lost = new ConcurrentBag<string>();
        var acknowledged = Acknowledged.OrderBy(p => p.Key, StringComparer.Ordinal).ToList();
        var unsure = Unknown.Keys.Concat(Failed.Keys).ToList();
        var present = 0;
        await Task.WhenAll(Enumerable.Range(0, readers).Select(r => Task.Run(async () =>
        {
            await using var reader = await GTStoreClient.InitAsync(options).ConfigureAwait(false);
            for (var i = r; i < acknowledged.Count; i += readers)
            {
                var (key, value) = acknowledged[i];
                var read = await reader.GetAsync(key).ConfigureAwait(false);
                if (!read.Found || read.ValueString != value)
                    lost.Add($"{key}: expected {value[..Math.Min(20, value.Length)]}..., got {(read.Found ? read.ValueString![..Math.Min(20, read.ValueString!.Length)] + "..." : "not found")}");
            }
            for (var i = r; i < unsure.Count; i += readers)
            {
                var read = await reader.GetAsync(unsure[i]).ConfigureAwait(false);
                if (read.Found)
                {
                    Assert.Equal(ValueOf(unsure[i]), read.ValueString);
                    Interlocked.Increment(ref present);
                }
            }
        }))).ConfigureAwait(false);
        output.WriteLine($"read back {acknowledged.Count} acknowledged writes: {lost.Count} lost; {present} of {unsure.Count} unknown or failed writes are present");
        return (lost.Order(StringComparer.Ordinal).ToList(), present);
    }
}
