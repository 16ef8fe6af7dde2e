using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace GTStore.Transport.Reactor;

/// <summary>
/// One thread per process that waits on every connection's socket with one epoll set and runs
/// the reads and writes that became possible inline, the way a Redis server's event loop does.
/// Everything one wake-up finds ready is handled as one <see cref="DispatchBurst"/>: the requests
/// of all the connections that were readable reach the node's loop as one step, and the messages
/// that step queues leave with one flush per connection, where .NET's socket engine made a burst
/// (and a flush) of each connection's read. It also spares the receive that .NET tries before it
/// waits for readiness, which comes back empty after most messages.
/// </summary>
internal sealed unsafe class SocketReactor
{
    private const int EventsPerWait = 256;

    private static SocketReactor? s_instance;
    private static readonly Lock s_create = new();

    private readonly int _epoll;
    private readonly ConcurrentDictionary<ulong, ReactorStream> _streams = new();
    private long _lastId;

    private SocketReactor()
    {
        _epoll = Libc.epoll_create1(Libc.EpollCloexec);
        if (_epoll < 0)
            throw new IOException($"epoll_create1 failed: errno {Marshal.GetLastPInvokeError()}");
        new Thread(Run) { IsBackground = true, Name = "gtstore-reactor" }.Start();
    }

    /// <summary>Whether this process uses the reactor (<see cref="SocketStreams.UseReactor"/>).</summary>
    public static bool Enabled { get; set; }

    /// <summary>Only x86-64 Linux: its <c>epoll_event</c> layout is the one <see cref="Libc"/> declares.</summary>
    public static bool Supported => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    public static SocketReactor Instance
    {
        get
        {
            if (s_instance is { } reactor)
                return reactor;
            lock (s_create)
                return s_instance ??= new SocketReactor();
        }
    }

    /// <summary>
    /// Adds the socket to the epoll set, edge-triggered: for reads always, for writes only while
    /// <paramref name="watchWrites"/> (see <see cref="WatchWrites"/>).
    /// </summary>
    /// <remarks>
    /// Events may reach the stream before this returns: <paramref name="id"/> comes from
    /// <see cref="NewId"/>, so that the stream knows it (for <see cref="WatchWrites"/>) before.
    /// </remarks>
    public void Register(ulong id, ReactorStream stream, int fd, bool watchWrites)
    {
        _streams[id] = stream;
        var ev = new Libc.EpollEvent { Events = Interest(watchWrites), Data = id };
        if (Libc.epoll_ctl(_epoll, Libc.EpollCtlAdd, fd, &ev) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            _streams.TryRemove(id, out _);
            throw new IOException($"epoll_ctl(ADD) failed: errno {errno}");
        }
    }

    /// <summary>The name a stream is known by in the epoll set; never reused, unlike descriptors.</summary>
    public ulong NewId() => (ulong)Interlocked.Increment(ref _lastId);

    /// <summary>
    /// Starts or stops reporting the socket's room to write. Only a write that found the socket
    /// full waits for it: a Unix socket reports room each time its peer reads, which would
    /// otherwise wake this thread once for every message sent. Turning it on reports at once a
    /// socket that has room already, so no edge is missed. Returns 0 or the errno.
    /// </summary>
    public int WatchWrites(ulong id, int fd, bool on)
    {
        var ev = new Libc.EpollEvent { Events = Interest(on), Data = id };
        return Libc.epoll_ctl(_epoll, Libc.EpollCtlMod, fd, &ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    private static uint Interest(bool writes) =>
        Libc.EpollIn | Libc.EpollRdHup | Libc.EpollEt | (writes ? Libc.EpollOut : 0);

    /// <summary>Removes the socket; call while its descriptor is still open.</summary>
    public void Unregister(ulong id, int fd)
    {
        _streams.TryRemove(id, out _);
        Libc.epoll_ctl(_epoll, Libc.EpollCtlDel, fd, null);
    }

    private void Run()
    {
        var events = stackalloc Libc.EpollEvent[EventsPerWait];
        while (true)
        {
            var n = Libc.epoll_wait(_epoll, events, EventsPerWait, -1);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EIntr)
                    continue;
                Environment.FailFast($"gtstore: epoll_wait failed: errno {errno}");
            }
            DispatchBurst.Enter();
            try
            {
                for (var i = 0; i < n; i++)
                {
                    if (_streams.TryGetValue(events[i].Data, out var stream))
                        stream.OnEvents(events[i].Events);
                }
            }
            finally
            {
                DispatchBurst.Exit();
            }
        }
    }
}
