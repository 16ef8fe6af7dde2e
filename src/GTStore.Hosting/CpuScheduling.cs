using System.Runtime.InteropServices;

namespace GTStore.Hosting;

/// <summary>How the kernel schedules a daemon's threads (<c>gtstore start --scheduling</c>).</summary>
public enum CpuScheduling
{
    /// <summary>The kernel's default policy (SCHED_OTHER): a thread woken by a message may preempt the one running.</summary>
    Normal,
    /// <summary>
    /// SCHED_BATCH: the same fair share of the CPU, but a woken thread waits for the running one's
    /// turn to end instead of preempting it. Where several nodes share a core, a node that sends a
    /// message then finishes its batch instead of being switched out for the receiver and back.
    /// </summary>
    Batch,
}

/// <summary>Applies a <see cref="CpuScheduling"/> policy to every thread of this process (Linux).</summary>
public static partial class CpuSchedulingPolicy
{
    private const int SchedOther = 0;
    private const int SchedBatch = 3;

    /// <summary>
    /// Sets <paramref name="policy"/> on every thread this process has now; threads started later
    /// inherit it from the thread that starts them. Returns null, or why it could not be set (not
    /// Linux, or a thread the kernel refused): the process runs on under the policy it had.
    /// </summary>
    public static string? Apply(CpuScheduling policy)
    {
        if (!OperatingSystem.IsLinux())
            return policy == CpuScheduling.Normal ? null : "CPU scheduling policies are set on Linux only";
        var kernelPolicy = policy == CpuScheduling.Batch ? SchedBatch : SchedOther;
        string? failure = null;
        foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            if (!int.TryParse(Path.GetFileName(task), out var tid))
                continue;
            var param = 0; // struct sched_param { int sched_priority; }: 0 for both policies.
            if (sched_setscheduler(tid, kernelPolicy, ref param) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Esrch) // A thread that exited meanwhile.
                    failure ??= $"the kernel refused {(kernelPolicy == SchedBatch ? "SCHED_BATCH" : "SCHED_OTHER")} for thread {tid}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
            }
        }
        return failure;
    }

    private const int Esrch = 3;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_setscheduler(int pid, int policy, ref int param);
}
