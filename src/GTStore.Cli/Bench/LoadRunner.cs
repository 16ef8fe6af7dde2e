using System.Diagnostics;
using GTStore.Client;
using HdrHistogram;

namespace GTStore.Cli.Bench;

/// <summary>Latencies (microseconds) and counts of one run.</summary>
public sealed class RunResult
{
    public LongHistogram Reads { get; } = NewHistogram();
    public LongHistogram Writes { get; } = NewHistogram();
    public long Errors { get; set; }
    public TimeSpan Elapsed { get; set; }

    public long Operations => Reads.TotalCount + Writes.TotalCount;

    public double OpsPerSecond => Operations / Math.Max(Elapsed.TotalSeconds, 1e-9);

    public LongHistogram All()
    {
        var all = NewHistogram();
        all.Add(Reads);
        all.Add(Writes);
        return all;
    }

    /// <summary>1 µs .. 60 s at 3 significant digits.</summary>
    public static LongHistogram NewHistogram() => new(1, 60_000_000, 3);
}

/// <summary>
/// Drives a workload through real client libraries: <c>clients</c> clients (each with its own
/// forwarder), each keeping <c>pipeline</c> requests in flight, until an op count or a duration
/// is reached. Bounded in count and time.
/// </summary>
public static class LoadRunner
{
    public static async Task LoadAsync(IReadOnlyList<GTStoreClient> clients, long records, byte[] value, int pipeline, Action<long> progress)
    {
        long next = -1;
        long done = 0;
        await Task.WhenAll(clients.SelectMany(c => Enumerable.Range(0, pipeline).Select(async _ =>
        {
            long i;
            while ((i = Interlocked.Increment(ref next)) < records)
            {
                await c.PutAsync(Workload.Key(i), System.Text.Encoding.UTF8.GetString(value)).ConfigureAwait(false);
                progress(Interlocked.Increment(ref done));
            }
        }))).ConfigureAwait(false);
    }

    public static async Task<RunResult> RunAsync(
        IReadOnlyList<GTStoreClient> clients, Workload workload, KeyChooser keys, byte[] value, int pipeline,
        long? operations, TimeSpan? duration, int seed, Action<long> progress)
    {
        var result = new RunResult();
        var gate = new Lock();
        long issued = -1;
        long completed = 0;
        var clock = Stopwatch.StartNew();
        var valueText = System.Text.Encoding.UTF8.GetString(value);
        var workers = clients.SelectMany((c, ci) => Enumerable.Range(0, pipeline).Select(async pi =>
        {
            var random = new Random(seed * 7919 + ci * 131 + pi);
            var reads = RunResult.NewHistogram();
            var writes = RunResult.NewHistogram();
            long errors = 0;
            while (true)
            {
                if (operations is { } max && Interlocked.Increment(ref issued) >= max)
                    break;
                if (duration is { } d && clock.Elapsed >= d)
                    break;
                var key = Workload.Key(keys.Next(random));
                var isRead = random.NextDouble() < workload.ReadRatio;
                var start = Stopwatch.GetTimestamp();
                try
                {
                    if (isRead)
                        await c.GetAsync(key).ConfigureAwait(false);
                    else
                        await c.PutAsync(key, valueText).ConfigureAwait(false);
                    var micros = Math.Max(1, (long)Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                    (isRead ? reads : writes).RecordValue(Math.Min(micros, 60_000_000));
                }
                catch (GTStoreException)
                {
                    errors++;
                }
                progress(Interlocked.Increment(ref completed));
            }
            lock (gate)
            {
                result.Reads.Add(reads);
                result.Writes.Add(writes);
                result.Errors += errors;
            }
        })).ToList();
        await Task.WhenAll(workers).ConfigureAwait(false);
        result.Elapsed = clock.Elapsed;
        return result;
    }
}
