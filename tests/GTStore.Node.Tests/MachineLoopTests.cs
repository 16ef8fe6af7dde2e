using GTStore.Hosting;

namespace GTStore.Node.Tests;

/// <summary>
/// Inputs posted from many threads are applied one at a time, in each poster's order, with the
/// effects carried out after every batch and never while an input is applied.
/// </summary>
public sealed class MachineLoopTests
{
    [Fact]
    public async Task Inputs_from_many_threads_are_applied_one_at_a_time_in_each_posters_order()
    {
        const int posters = 4, perPoster = 20_000;
        var inside = 0;
        var overlaps = 0;
        var applied = 0;
        var afterSteps = 0;
        var lastSeen = new int[posters];
        var outOfOrder = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var loop = new MachineLoop(_ => { }, () =>
        {
            if (Interlocked.Exchange(ref inside, 1) != 0)
                overlaps++;
            afterSteps++;
            Volatile.Write(ref inside, 0);
        }, tickIntervalMs: 3_600_000);

        var threads = Enumerable.Range(0, posters).Select(p => Task.Run(async () =>
        {
            for (var i = 1; i <= perPoster; i++)
            {
                var n = i;
                await loop.PostAsync(_ =>
                {
                    if (Interlocked.Exchange(ref inside, 1) != 0)
                        overlaps++;
                    if (lastSeen[p] != n - 1)
                        outOfOrder++;
                    lastSeen[p] = n;
                    if (++applied == posters * perPoster)
                        done.TrySetResult();
                    Volatile.Write(ref inside, 0);
                });
            }
        })).ToArray();
        await Task.WhenAll(threads);
        await done.Task.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal((0, 0), (overlaps, outOfOrder));
        Assert.All(lastSeen, last => Assert.Equal(perPoster, last));
        Assert.InRange(afterSteps, posters * perPoster / MachineLoop.BatchInputsMax, posters * perPoster);
        Assert.False(loop.Completion.IsCompleted);
    }

    [Fact]
    public async Task An_input_that_throws_faults_the_loop()
    {
        var loop = new MachineLoop(_ => { }, () => { }, tickIntervalMs: 3_600_000);
        await loop.PostAsync(_ => throw new InvalidOperationException("machine bug"));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => loop.Completion.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("machine bug", e.Message);
        // Disposing surfaces the fault too, so a host shutting down cannot miss it.
        await Assert.ThrowsAsync<InvalidOperationException>(() => loop.DisposeAsync().AsTask());
    }

    [Fact]
    public async Task Inputs_posted_with_state_are_applied_with_it_in_order_with_the_others_in_and_out_of_a_burst()
    {
        var applied = new List<string>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var loop = new MachineLoop(_ => { }, () => { }, tickIntervalMs: 3_600_000);
        Action<long, object?, long> apply = (_, state, arg) => applied.Add($"{state}:{arg}");

        await loop.PostAsync(apply, "a", 1);
        await loop.PostAsync(_ => applied.Add("b"));
        await Task.Run(async () =>
        {
            // Inside a burst the inputs are staged and posted together when it ends.
            GTStore.Transport.DispatchBurst.Enter();
            try
            {
                await loop.PostAsync(apply, "c", 3);
                await loop.PostAsync(_ => applied.Add("d"));
                await loop.PostAsync(apply, null, long.MaxValue);
            }
            finally
            {
                GTStore.Transport.DispatchBurst.Exit();
            }
        });
        await loop.PostAsync(_ => done.TrySetResult());
        await done.Task.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(["a:1", "b", "c:3", "d", $":{long.MaxValue}"], applied);
    }

    [Fact]
    public async Task A_bursts_inputs_are_all_prefetched_before_the_first_is_applied()
    {
        var events = new List<string>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var loop = new MachineLoop(_ => { }, () => { }, tickIntervalMs: 3_600_000,
            prefetch: state => events.Add($"prefetch {state}"));
        Action<long, object?, long> apply = (_, state, _) => events.Add($"apply {state}");

        await Task.Run(async () =>
        {
            GTStore.Transport.DispatchBurst.Enter();
            try
            {
                await loop.PostAsync(apply, "x");
                await loop.PostAsync(apply, "y");
            }
            finally
            {
                GTStore.Transport.DispatchBurst.Exit();
            }
        });
        await loop.PostAsync(_ => done.TrySetResult());
        await done.Task.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(["prefetch x", "prefetch y", "apply x", "apply y"], events);
    }
}
