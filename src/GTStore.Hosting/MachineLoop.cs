using System.Collections.Concurrent;

namespace GTStore.Hosting;

/// <summary>
/// Runs a Core state machine as if on one loop: every input (a request, a message, a tick) is
/// queued here and applied in order, one at a time, so the machine needs no locks, exactly as in
/// the simulation. There is no loop thread: the poster that finds the machine idle applies the
/// queue itself (inputs queued meanwhile by other threads included) and carries out the effects,
/// so a message usually goes from socket to machine to socket on one thread, with no hand-off.
/// Inputs are applied in batches (up to <see cref="BatchInputsMax"/>); after each batch the host's
/// <c>afterStep</c> carries out the effects of the whole batch, so one fsync (group commit) and one
/// flush per connection serve many requests.
/// </summary>
public sealed class MachineLoop : IAsyncDisposable
{
    /// <summary>Inputs queued before posters wait (backpressure on connections).</summary>
    public const int InputQueueMax = 65_536;

    /// <summary>Most inputs applied before their effects are carried out.</summary>
    public const int BatchInputsMax = 256;

    /// <summary>
    /// Batches one poster applies before it hands the rest to a pool thread, so a poster (a
    /// connection's reader) is not held for long by other connections' inputs.
    /// </summary>
    private const int InlineBatchesMax = 8;

    private readonly ConcurrentQueue<Action<long>> _inputs = new();
    private readonly Action _afterStep;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _roomGate = new();
    private readonly Task _ticker;
    private TaskCompletionSource? _room;
    private int _queued;
    private int _running;
    private volatile bool _stopped;

    /// <param name="tick">Called every <paramref name="tickIntervalMs"/> as an input.</param>
    /// <param name="afterStep">Carries out the effects of the batch just applied.</param>
    public MachineLoop(Action<long> tick, Action afterStep, int tickIntervalMs = 20)
    {
        _afterStep = afterStep;
        _ticker = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(tickIntervalMs));
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                    await PostAsync(tick).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        });
    }

    /// <summary>Wall-clock milliseconds since the Unix epoch: the hybrid clock's physical part.</summary>
    public static long NowMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>Faults if an input threw: the machine's state can no longer be trusted, and nothing more is applied.</summary>
    public Task Completion => _completion.Task;

    /// <summary>
    /// Queues <paramref name="input"/> and, if the machine is idle, applies it (and whatever else is
    /// queued) on this thread before returning. Waits only when <see cref="InputQueueMax"/> inputs
    /// are queued. Canceled once the loop is disposed.
    /// </summary>
    public ValueTask PostAsync(Action<long> input)
    {
        if (_stopped)
            return ValueTask.FromCanceled(new CancellationToken(canceled: true));
        var queued = Interlocked.Increment(ref _queued);
        _inputs.Enqueue(input);
        Run();
        return queued > InputQueueMax ? WaitForRoomAsync() : ValueTask.CompletedTask;
    }

    private void Run()
    {
        while (Interlocked.CompareExchange(ref _running, 1, 0) == 0)
        {
            var batches = 0;
            try
            {
                while (!_stopped && batches < InlineBatchesMax && ApplyBatch())
                    batches++;
            }
            catch (Exception e)
            {
                // _running stays 1: a machine that threw mid-input is not run again.
                _stopped = true;
                _completion.TrySetException(e);
                return;
            }
            Volatile.Write(ref _running, 0);
            if (_inputs.IsEmpty || _stopped)
                return;
            if (batches >= InlineBatchesMax)
            {
                // Busy: let a pool thread go on, and return this poster to its own work.
                ThreadPool.UnsafeQueueUserWorkItem(static loop => loop.Run(), this, preferLocal: false);
                return;
            }
            // An input was queued after our last look, by a poster that saw us running: apply it.
        }
    }

    /// <summary>Applies up to one batch and carries out its effects; false if nothing was queued.</summary>
    private bool ApplyBatch()
    {
        var applied = 0;
        while (applied < BatchInputsMax && _inputs.TryDequeue(out var input))
        {
            input(NowMs());
            applied++;
        }
        if (applied == 0)
            return false;
        var left = Interlocked.Add(ref _queued, -applied);
        _afterStep();
        if (left <= InputQueueMax && Volatile.Read(ref _room) is not null)
        {
            lock (_roomGate)
            {
                _room?.TrySetResult();
                _room = null;
            }
        }
        return true;
    }

    private async ValueTask WaitForRoomAsync()
    {
        while (Volatile.Read(ref _queued) > InputQueueMax)
        {
            Task room;
            lock (_roomGate)
            {
                if (Volatile.Read(ref _queued) <= InputQueueMax)
                    return;
                _room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                room = _room.Task;
            }
            Run(); // Whoever held the machine may have returned between our post and now.
            await room.WaitAsync(_stop.Token).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopped = true;
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _ticker.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        // Let an input being applied finish before the host releases what the machine uses.
        var spin = new SpinWait();
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Volatile.Read(ref _running) != 0 && !_completion.Task.IsCompleted && DateTime.UtcNow < deadline)
            spin.SpinOnce();
        _completion.TrySetResult();
        _stop.Dispose();
    }
}
