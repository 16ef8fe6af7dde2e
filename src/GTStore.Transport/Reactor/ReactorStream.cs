using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace GTStore.Transport.Reactor;

/// <summary>
/// A connected socket as a <see cref="Stream"/> served by the <see cref="SocketReactor"/>. A read
/// or write is tried at once when the socket may be ready, else it waits (parked) until the reactor
/// reports readiness and then runs on the reactor's thread, its continuation inline. Readiness is
/// edge-triggered: a read that returns less than it asked for has drained the socket, so the next
/// one waits for the next edge instead of trying a receive that would come back empty.
/// </summary>
internal sealed unsafe class ReactorStream : Stream
{
    private readonly Socket _socket;
    private readonly int _fd;
    private readonly ulong _id;
    private readonly Lock _lock = new();
    private readonly Parked<int> _read = new();
    private readonly Parked<bool> _write = new();
    private bool _readable = true; // Until a receive says otherwise.
    private bool _hungUp; // The peer's end (or an error) is queued: every receive returns at once from now on.
    private bool _writable;
    private bool _watchingWrites; // Whether epoll reports room to write: only while a write waits for it.
    private Memory<byte> _readInto;
    private ReadOnlyMemory<byte> _writeRest;
    private bool _closed;

    /// <param name="socket">A connected socket, or one whose non-blocking connect is under way (<paramref name="writable"/> false).</param>
    /// <param name="writable">False while a connect is in progress: the first write waits for it.</param>
    public ReactorStream(Socket socket, bool writable = true)
    {
        _socket = socket;
        _fd = (int)socket.SafeHandle.DangerousGetHandle();
        _writable = writable;
        _watchingWrites = !writable;
        _id = SocketReactor.Instance.NewId();
        SocketReactor.Instance.Register(_id, this, _fd, watchWrites: _watchingWrites); // Last: events may follow at once.
    }

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Completes when the socket is writable: for a non-blocking connect, when it has finished (or failed).</summary>
    public ValueTask WaitWritableAsync(CancellationToken ct) => WriteAsync(ReadOnlyMemory<byte>.Empty, ct);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled<int>(cancellationToken);
        short version;
        lock (_lock)
        {
            if (_closed)
                return ValueTask.FromException<int>(Closed());
            if (buffer.IsEmpty)
                return new ValueTask<int>(0);
            if (_readable && TryReceive(buffer.Span, out var received, out var error))
                return error is null ? new ValueTask<int>(received) : ValueTask.FromException<int>(error);
            _readInto = buffer;
            version = _read.Park();
        }
        if (cancellationToken.CanBeCanceled)
            _read.Watch(cancellationToken, version, static s => ((ReactorStream)s!).CancelRead(), this, _lock);
        return new ValueTask<int>(_read, version);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled(cancellationToken);
        short version;
        lock (_lock)
        {
            if (_closed)
                return ValueTask.FromException(Closed());
            if (_writable && TrySend(ref buffer, out var error))
                return error is null ? ValueTask.CompletedTask : ValueTask.FromException(error);
            _writeRest = buffer;
            version = _write.Park();
        }
        if (cancellationToken.CanBeCanceled)
            _write.Watch(cancellationToken, version, static s => ((ReactorStream)s!).CancelWrite(), this, _lock);
        return new ValueTask(_write, version);
    }

    /// <summary>How many times the reactor has reported on this socket (tests: wake-ups it costs).</summary>
    internal int EventsReceived => Volatile.Read(ref _eventsReceived);

    private int _eventsReceived;

    /// <summary>On the reactor's thread: what epoll reported for this socket.</summary>
    public void OnEvents(uint events)
    {
        Volatile.Write(ref _eventsReceived, _eventsReceived + 1);
        if ((events & (Libc.EpollIn | Libc.EpollRdHup | Libc.EpollHup | Libc.EpollErr)) != 0)
            OnReadable(hungUp: (events & (Libc.EpollRdHup | Libc.EpollHup | Libc.EpollErr)) != 0);
        if ((events & (Libc.EpollOut | Libc.EpollHup | Libc.EpollErr)) != 0)
            OnWritable();
    }

    private void OnReadable(bool hungUp)
    {
        int received;
        Exception? error;
        lock (_lock)
        {
            _readable = true;
            _hungUp |= hungUp;
            if (_closed || !_read.IsParked || !TryReceive(_readInto.Span, out received, out error))
                return;
            _readInto = default;
            _read.Unpark();
        }
        _read.Complete(received, error);
    }

    private void OnWritable()
    {
        Exception? error;
        lock (_lock)
        {
            _writable = true;
            if (_closed)
                return;
            if (!_write.IsParked)
            {
                WatchWrites(false); // The wait was cancelled meanwhile.
                return;
            }
            if (!TrySend(ref _writeRest, out error))
                return;
            _writeRest = default;
            _write.Unpark();
            error ??= WatchWrites(false);
        }
        _write.Complete(true, error);
    }

    /// <summary>
    /// Receives into <paramref name="buffer"/>: false when nothing is there yet (the socket is then
    /// not readable until the next edge); true with the count (0 at the end of the stream) or an error.
    /// </summary>
    private bool TryReceive(Span<byte> buffer, out int received, out Exception? error)
    {
        error = null;
        while (true)
        {
            nint n;
            fixed (byte* p = buffer)
                n = Libc.recv(_fd, p, (nuint)buffer.Length, Libc.MsgDontWait);
            if (n >= 0)
            {
                received = (int)n;
                // Drained: the next arrival raises a new edge. Not so the end of the stream when
                // it came with the data: its one edge has passed, so the next receive must run.
                if (n > 0 && n < buffer.Length && !_hungUp)
                    _readable = false;
                return true;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.EIntr)
                continue;
            received = 0;
            if (errno == Libc.EAgain)
            {
                _readable = false;
                return false;
            }
            error = SocketError("receive", errno);
            return true;
        }
    }

    /// <summary>Sends what it can of <paramref name="rest"/>: false while some is left and the socket is full.</summary>
    private bool TrySend(ref ReadOnlyMemory<byte> rest, out Exception? error)
    {
        error = null;
        while (!rest.IsEmpty)
        {
            nint n;
            fixed (byte* p = rest.Span)
                n = Libc.send(_fd, p, (nuint)rest.Length, Libc.MsgDontWait | Libc.MsgNoSignal);
            if (n >= 0)
            {
                rest = rest[(int)n..];
                continue;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.EIntr)
                continue;
            if (errno == Libc.EAgain)
            {
                _writable = false;
                error = WatchWrites(true);
                return error is not null; // Waits for room, unless it cannot be watched for.
            }
            error = SocketError("send", errno);
            return true;
        }
        return true;
    }

    /// <summary>Under the lock: has the reactor report room to write, or stop; an error if epoll refused.</summary>
    private IOException? WatchWrites(bool on)
    {
        if (_watchingWrites == on)
            return null;
        // The descriptor stays this socket's while it is changed (see Dispose).
        var held = false;
        try
        {
            _socket.SafeHandle.DangerousAddRef(ref held);
            var errno = SocketReactor.Instance.WatchWrites(_id, _fd, on);
            if (errno != 0)
                return SocketError("wait to send", errno);
            _watchingWrites = on;
            return null;
        }
        catch (ObjectDisposedException)
        {
            return Closed();
        }
        finally
        {
            if (held)
                _socket.SafeHandle.DangerousRelease();
        }
    }

    private void CancelRead()
    {
        lock (_lock)
        {
            if (!_read.IsParked)
                return;
            _readInto = default;
            _read.Unpark();
        }
        _read.Complete(0, new OperationCanceledException("the read was cancelled"));
    }

    private void CancelWrite()
    {
        lock (_lock)
        {
            if (!_write.IsParked)
                return;
            _writeRest = default;
            _write.Unpark();
        }
        _write.Complete(false, new OperationCanceledException("the write was cancelled"));
    }

    private static IOException SocketError(string operation, int errno)
    {
        var socketError = errno switch
        {
            104 => System.Net.Sockets.SocketError.ConnectionReset,
            32 => System.Net.Sockets.SocketError.Shutdown,
            111 => System.Net.Sockets.SocketError.ConnectionRefused,
            110 => System.Net.Sockets.SocketError.TimedOut,
            113 => System.Net.Sockets.SocketError.HostUnreachable,
            101 => System.Net.Sockets.SocketError.NetworkUnreachable,
            103 => System.Net.Sockets.SocketError.ConnectionAborted,
            _ => System.Net.Sockets.SocketError.SocketError,
        };
        var inner = new SocketException((int)socketError);
        return new IOException($"Unable to {operation}: {inner.Message}", inner);
    }

    private static IOException Closed() => new("the connection is closed", new ObjectDisposedException(nameof(ReactorStream)));

    protected override void Dispose(bool disposing)
    {
        bool readParked, writeParked;
        lock (_lock)
        {
            if (_closed)
                return;
            _closed = true;
            readParked = _read.IsParked;
            writeParked = _write.IsParked;
            if (readParked)
                _read.Unpark();
            if (writeParked)
                _write.Unpark();
            _readInto = default;
            _writeRest = default;
        }
        // Hold the descriptor open while it leaves the epoll set; once the socket has closed it,
        // the kernel has removed it, and the number may already belong to another socket.
        var held = false;
        try
        {
            _socket.SafeHandle.DangerousAddRef(ref held);
            SocketReactor.Instance.Unregister(_id, _fd);
        }
        catch (ObjectDisposedException)
        {
            SocketReactor.Instance.Unregister(_id, -1);
        }
        finally
        {
            if (held)
                _socket.SafeHandle.DangerousRelease();
        }
        if (readParked)
            _read.Complete(0, Closed());
        if (writeParked)
            _write.Complete(false, Closed());
        base.Dispose(disposing);
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // Synchronous I/O would block the thread, which may be the reactor's own: not offered.
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("use ReadAsync");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("use WriteAsync");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>
    /// One direction's waiting operation: a reusable value-task source whose continuation runs on
    /// the thread that completes it, and the registration of its cancellation token.
    /// </summary>
    private sealed class Parked<T> : IValueTaskSource<T>, IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<T> _core; // RunContinuationsAsynchronously false: inline.
        private CancellationTokenRegistration _cancel;

        /// <summary>Under the stream's lock.</summary>
        public bool IsParked { get; private set; }

        /// <summary>Under the stream's lock: starts a wait, returning its version.</summary>
        public short Park()
        {
            _core.Reset();
            IsParked = true;
            return _core.Version;
        }

        /// <summary>Under the stream's lock: ends the wait; then, outside it, <see cref="Complete"/>.</summary>
        public void Unpark() => IsParked = false;

        /// <summary>Registers the token for the wait of <paramref name="version"/>; outside the lock.</summary>
        public void Watch(CancellationToken ct, short version, Action<object?> onCancel, object state, Lock gate)
        {
            var registration = ct.UnsafeRegister(onCancel, state);
            bool keep;
            lock (gate)
            {
                keep = IsParked && _core.Version == version;
                if (keep)
                    _cancel = registration;
            }
            if (!keep)
                registration.Dispose(); // Completed meanwhile.
        }

        public void Complete(T result, Exception? error)
        {
            var cancel = _cancel;
            _cancel = default;
            cancel.Dispose();
            if (error is null)
                _core.SetResult(result);
            else
                _core.SetException(error);
        }

        public T GetResult(short token) => _core.GetResult(token);

        void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
