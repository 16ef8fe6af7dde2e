using System.Threading.Channels;
using GTStore.Transport;

namespace GTStore.Hosting;

/// <summary>
/// Runs a Core state machine on one loop: every input (a request, a message, a tick) is posted
/// here and applied in order on a single task, so the machine needs no locks, exactly as in the
/// simulation. Inputs are applied in batches (all that are queued, up to <see cref="BatchInputsMax"/>);
/// after each batch the host's <c>afterStep</c> carries out the effects of the whole batch, so one
/// fsync (group commit) and one flush per connection serve many requests.
/// </summary>
public sealed class MachineLoop : IAsyncDisposable
{
    /// <summary>Inputs queued before posters wait (backpressure on connections).</summary>
    public const int InputQueueMax = 65_536;

    /// <summary>Most inputs applied before their effects are carried out.</summary>
    public const int BatchInputsMax = 256;

    /// <summary>
    /// One queued input: <c>Apply(now, State, Arg)</c>. A host posts a message with a delegate it
    /// made once and the message as state, so posting allocates nothing of its own.
    /// </summary>
    private readonly record struct Input(Action<long, object?, long> Apply, object? State, long Arg);

    private static readonly Action<long, object?, long> InvokeAction = static (now, action, _) => ((Action<long>)action!)(now);

    private readonly Channel<Input> _inputs = Channel.CreateBounded<Input>(
        new BoundedChannelOptions(InputQueueMax) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait, AllowSynchronousContinuations = true });
    private readonly Action _afterStep;
    private readonly Action<object?>? _prefetch;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;
    private readonly Task _ticker;

    /// <param name="tick">Called every <paramref name="tickIntervalMs"/> on the loop.</param>
    /// <param name="afterStep">Carries out the effects of the batch just applied.</param>
    /// <param name="prefetch">
    /// Called with the state of each input of a burst before any of them is applied: a hint that
    /// lets the machine start loading what the inputs will touch.
    /// </param>
    public MachineLoop(Action<long> tick, Action afterStep, int tickIntervalMs = 20, Action<object?>? prefetch = null)
    {
        _afterStep = afterStep;
        _prefetch = prefetch;
        _postStaged = PostStaged;
        _applyAll = ApplyAll;
        _run = Task.Run(RunAsync);
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

    /// <summary>Faults if an input threw: the machine's state can no longer be trusted.</summary>
    public Task Completion => _run;

    // The inputs staged in the current burst, and a list applied and emptied, kept for the next
    // burst: a burst's inputs travel to the loop in their list instead of a copy of it.
    private readonly Lock _stagingLock = new();
    private List<Input> _staged = [];
    private List<Input>? _spare;
    private readonly Action _postStaged;
    private readonly Action<long, object?, long> _applyAll;

    /// <summary>
    /// Queues <paramref name="input"/>. Inside a <see cref="DispatchBurst"/> (the frames of one
    /// read, the commands of one RESP read) inputs are staged and posted together when the burst
    /// ends, as one input: the loop applies them in one step and carries out their effects once.
    /// </summary>
    public ValueTask PostAsync(Action<long> input) => PostAsync(new Input(InvokeAction, input, 0));

    /// <summary>
    /// Queues <c><paramref name="apply"/>(now, <paramref name="state"/>, <paramref name="arg"/>)</c>,
    /// as <see cref="PostAsync(Action{long})"/> does: with a delegate made once, nothing is
    /// allocated per input.
    /// </summary>
    public ValueTask PostAsync(Action<long, object?, long> apply, object? state, long arg = 0) => PostAsync(new Input(apply, state, arg));

    private ValueTask PostAsync(Input input)
    {
        if (!DispatchBurst.Active)
            return _inputs.Writer.WriteAsync(input, _stop.Token);
        bool first;
        lock (_stagingLock)
        {
            first = _staged.Count == 0;
            _staged.Add(input);
        }
        if (first)
            DispatchBurst.AtEnd(_postStaged);
        return ValueTask.CompletedTask;
    }

    private void PostStaged()
    {
        List<Input> inputs;
        lock (_stagingLock)
        {
            inputs = _staged;
            if (inputs.Count == 0)
                return;
            _staged = Interlocked.Exchange(ref _spare, null) ?? [];
        }
        // A single input goes alone and its list back at once: before the write, which may run
        // the loop inline, and with it bursts that take the spare list.
        var posted = inputs.Count == 1 ? inputs[0] : new Input(_applyAll, inputs, 0);
        if (inputs.Count == 1)
            Recycle(inputs);
        var write = _inputs.Writer.WriteAsync(posted, _stop.Token);
        if (!write.IsCompletedSuccessfully)
            _ = write.AsTask(); // Queue full: the write completes when the loop catches up.
    }

    /// <summary>Applies a burst's inputs (on the loop) and keeps their list for a later burst.</summary>
    private void ApplyAll(long now, object? state, long arg)
    {
        var inputs = (List<Input>)state!;
        if (_prefetch is { } prefetch)
        {
            foreach (var input in inputs)
                prefetch(input.State);
        }
        foreach (var input in inputs)
            input.Apply(now, input.State, input.Arg);
        Recycle(inputs);
    }

    private void Recycle(List<Input> inputs)
    {
        inputs.Clear();
        Volatile.Write(ref _spare, inputs);
    }

    private async Task RunAsync()
    {
        var reader = _inputs.Reader;
        while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
        {
            // A step is a burst: the messages its effects queue for one connection leave in one
            // flush when it ends.
            DispatchBurst.Enter();
            try
            {
                var applied = 0;
                while (applied < BatchInputsMax && reader.TryRead(out var input))
                {
                    input.Apply(NowMs(), input.State, input.Arg);
                    applied++;
                }
                _afterStep();
            }
            finally
            {
                DispatchBurst.Exit();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _inputs.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_run, _ticker).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
