using System.Runtime.CompilerServices;

namespace GTStore.Transport;

/// <summary>
/// A synchronous burst of dispatching on one thread: the frames parsed from one socket read, or
/// the commands of one RESP read. Work handed on during a burst can wait for its end
/// (<see cref="AtEnd"/>) and go out as one batch, so that a loop applies the whole read in one
/// step and its messages leave with one flush per connection, as a loop that is woken later
/// would batch them. A burst never spans an await that yields: callers leave it before such an
/// await and enter a new one after.
/// </summary>
public static class DispatchBurst
{
    [ThreadStatic]
    private static int t_depth;

    [ThreadStatic]
    private static List<Action>? t_atEnd;

    /// <summary>A list run and cleared, kept for the next burst instead of making one per burst.</summary>
    [ThreadStatic]
    private static List<Action>? t_spare;

    /// <summary>Whether this thread is inside a burst.</summary>
    public static bool Active => t_depth > 0;

    public static void Enter() => t_depth++;

    /// <summary>Leaves the burst; leaving the outermost one runs what was deferred to its end.</summary>
    public static void Exit()
    {
        if (--t_depth > 0)
            return;
        while (t_atEnd is { Count: > 0 } pending)
        {
            // Deferred by the actions below: run in the next pass, from the spare list.
            t_atEnd = t_spare;
            t_spare = null;
            foreach (var action in pending)
                action();
            pending.Clear();
            t_spare = pending;
        }
    }

    /// <summary>Runs <paramref name="action"/> when this thread's outermost burst ends; only inside one.</summary>
    public static void AtEnd(Action action)
    {
        if (t_depth == 0)
            throw new InvalidOperationException("not inside a dispatch burst");
        (t_atEnd ??= []).Add(action);
    }

    /// <summary>
    /// Awaited inside a burst, resumes when the outermost burst ends (on this thread); outside one,
    /// continues at once. A writer that awaits it sends everything queued during the burst in one
    /// flush instead of one per message.
    /// </summary>
    public static EndAwaitable UntilEnd() => default;

    /// <summary>The awaitable of <see cref="UntilEnd"/>.</summary>
    public readonly struct EndAwaitable : ICriticalNotifyCompletion
    {
        public EndAwaitable GetAwaiter() => this;

        public bool IsCompleted => !Active;

        public void GetResult()
        {
        }

        public void OnCompleted(Action continuation) => AtEnd(continuation);

        public void UnsafeOnCompleted(Action continuation) => AtEnd(continuation);
    }
}
