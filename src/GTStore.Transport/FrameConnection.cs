using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GTStore.Transport;

/// <summary>
/// A persistent connection carrying frames both ways, with many requests in flight matched by
/// request id (DESIGN.md "Transport"). One reader loop parses frames and completes waiting
/// requests or calls the <see cref="FrameHandler"/>; one writer loop drains a bounded send queue
/// and flushes once per batch. Shutdown is idempotent and never throws.
/// </summary>
/// <remarks>
/// Request ids: the side that connected allocates odd ids and the side that accepted allocates
/// even ids, as HTTP/2 does for streams. A frame whose id has our parity is therefore a response to
/// one of our requests, and one that nobody waits for any more (it timed out) is dropped instead
/// of being mistaken for a request from the peer. The wire format is unchanged by this rule.
/// </remarks>
public sealed class FrameConnection : IAsyncDisposable
{
    /// <summary>Bytes the writer loop encodes before it flushes, so one batch never buffers the whole queue.</summary>
    private const int FlushBytesMax = 1024 * 1024;

    /// <summary>Size of the pipe buffers between the socket stream and the frame loops.</summary>
    private const int PipeBufferBytes = 64 * 1024;

    /// <summary>How long a graceful close waits for queued frames to be written.</summary>
    private static readonly TimeSpan CloseDrainTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a graceful close reads (and discards) after shutting down its send side, waiting
    /// for the peer to close too. Closing with unread bytes would send a TCP reset, which can
    /// destroy the last frames (such as a ProtocolError) before the peer reads them.
    /// </summary>
    private static readonly TimeSpan CloseLingerTimeout = TimeSpan.FromSeconds(2);

    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    /// <summary>Largest encoding buffer the writer loop keeps between messages; a larger one is let go after use.</summary>
    private const int EncodeBufferBytesKept = 64 * 1024;

    /// <summary>
    /// A frame waiting in the send queue: its payload already encoded, or a message that the
    /// writer loop encodes when it writes the frame, into one buffer it reuses for every message.
    /// </summary>
    private readonly record struct Outgoing(ushort Type, ulong RequestId, ReadOnlyMemory<byte> Payload, Message? Message = null);

    private readonly Channel<Outgoing> _sendQueue;
    private ArrayBufferWriter<byte> _encoded = new(256);
    private WireWriter _encoder;
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<Frame>> _pending = new();
    private readonly List<Frame> _inbound = [];
    private readonly FrameHandler? _onFrame;
    private readonly ILogger _logger;
    private readonly bool _accepted;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _inputEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastRequestId;
    private int _started;
    private int _closing;
    private string _closeReason = "";
    private string? _remoteError;

    // Written by BeginClose before it completes the send queue; the writer loop reads it only
    // after the queue reports completion, which orders the two.
    private Frame? _finalFrame;
    private Task _writeLoop = Task.CompletedTask;

    internal FrameConnection(Socket socket, Stream stream, string remoteDescription, bool accepted, FrameHandler? onFrame, ILogger? logger)
    {
        _socket = socket;
        _stream = stream;
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: PipeBufferBytes, leaveOpen: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: PipeBufferBytes, leaveOpen: true));
        _encoder = new WireWriter(_encoded);
        _sendQueue = Channel.CreateBounded<Outgoing>(new BoundedChannelOptions(Limits.ConnectionSendQueueFramesMax)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
            // The writer resumes on the thread that queued the frame instead of waking a pool
            // thread; inside a dispatch burst it then waits for the burst's end (below).
            AllowSynchronousContinuations = true,
        });
        _accepted = accepted;
        _lastRequestId = accepted ? 0 : -1;
        _onFrame = onFrame;
        _logger = logger ?? NullLogger.Instance;
        RemoteDescription = remoteDescription;
    }

    /// <summary>Who is on the other end: the address dialled, or the peer address of an accepted socket.</summary>
    public string RemoteDescription { get; }

    /// <summary>Free slot for the host to remember who the peer is (e.g. its node id).</summary>
    public object? Tag { get; set; }

    /// <summary>True once the connection has begun closing; no frame can be sent any more.</summary>
    public bool IsClosed => Volatile.Read(ref _closing) != 0;

    /// <summary>Why the connection closed, or empty while it is open.</summary>
    public string CloseReason => Volatile.Read(ref _closeReason);

    /// <summary>Completes (never faults) when the connection is closed and its socket released.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Connects to <paramref name="address"/> (see <see cref="Endpoints"/>).</summary>
    /// <param name="address">Where to connect.</param>
    /// <param name="onFrame">Receives the peer's requests and one-way messages; null drops them.</param>
    /// <param name="ct">Cancels the connect.</param>
    /// <param name="logger">Optional logger.</param>
    /// <exception cref="ConnectionClosedException">The peer could not be reached; the message says why.</exception>
    public static async Task<FrameConnection> ConnectAsync(
        string address, FrameHandler? onFrame, CancellationToken ct, ILogger? logger = null)
    {
        var endpoint = Endpoints.Parse(address);
        var socket = Endpoints.CreateSocket(endpoint);
        Stream stream;
        try
        {
            stream = await SocketStreams.ConnectAsync(socket, endpoint, ct).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new ConnectionClosedException($"cannot connect to {address}: {Describe(e)}", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var connection = new FrameConnection(socket, stream, address, accepted: false, onFrame, logger);
        connection.Start();
        return connection;
    }

    /// <summary>
    /// Queues one frame. Returns at once unless <see cref="Limits.ConnectionSendQueueFramesMax"/>
    /// frames are already queued, in which case it waits for room (backpressure). The connection
    /// keeps a reference to <paramref name="payload"/> until the frame is written: do not reuse
    /// its buffer.
    /// </summary>
    /// <exception cref="ConnectionClosedException">The connection is closed; the frame was not queued.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The payload exceeds <see cref="FrameCodec.PayloadBytesMax"/>.</exception>
    public ValueTask SendAsync(ushort type, ulong requestId, ReadOnlyMemory<byte> payload, CancellationToken ct = default)
    {
        FrameCodec.EncodedLength(payload.Length);
        var frame = new Outgoing(type, requestId, payload);
        return _sendQueue.Writer.TryWrite(frame) ? ValueTask.CompletedTask : EnqueueSlowAsync(frame, ct);
    }

    /// <summary>
    /// Queues <paramref name="message"/> as one frame (see <see cref="SendAsync(ushort, ulong, ReadOnlyMemory{byte}, CancellationToken)"/>).
    /// The writer loop encodes it as it writes the frame, so no payload array is made for it: the
    /// message must not change once queued. One whose encoding exceeds
    /// <see cref="FrameCodec.PayloadBytesMax"/> is logged and dropped, and the connection goes on.
    /// </summary>
    /// <exception cref="ConnectionClosedException">The connection is closed; the message was not queued.</exception>
    public ValueTask SendAsync(ulong requestId, Message message, CancellationToken ct = default)
    {
        var frame = Queued(requestId, message);
        return _sendQueue.Writer.TryWrite(frame) ? ValueTask.CompletedTask : EnqueueSlowAsync(frame, ct);
    }

    /// <summary>
    /// Queues <paramref name="message"/> as <see cref="SendAsync(ulong, Message, CancellationToken)"/>
    /// does if the send queue has room at once; false if it is full or the connection is closed.
    /// </summary>
    public bool TrySend(ulong requestId, Message message) => _sendQueue.Writer.TryWrite(Queued(requestId, message));

    private static Outgoing Queued(ulong requestId, Message message) => new(MessageCodec.TypeOf(message), requestId, default, message);

    /// <summary>
    /// Sends a request under a fresh request id and waits for the frame that answers it.
    /// </summary>
    /// <param name="type">Frame type of the request.</param>
    /// <param name="payload">Request body; not to be reused until sent (see <see cref="SendAsync(ushort, ulong, ReadOnlyMemory{byte}, CancellationToken)"/>).</param>
    /// <param name="timeout">How long to wait, queueing included; <see cref="Timeout.InfiniteTimeSpan"/> waits forever.</param>
    /// <param name="ct">Cancels the wait.</param>
    /// <exception cref="TimeoutException">No response in time; a later response is dropped.</exception>
    /// <exception cref="ConnectionClosedException">The connection closed before the response arrived.</exception>
    /// <exception cref="RemoteProtocolException">The peer answered with a ProtocolError frame.</exception>
    public async Task<Frame> RequestAsync(
        ushort type, ReadOnlyMemory<byte> payload, TimeSpan timeout, CancellationToken ct = default)
    {
        if (timeout <= TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "a request timeout must be positive or infinite");
        }

        FrameCodec.EncodedLength(payload.Length);
        long startedTicks = Stopwatch.GetTimestamp();
        ulong requestId = unchecked((ulong)Interlocked.Add(ref _lastRequestId, 2));
        var response = new TaskCompletionSource<Frame>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[requestId] = response;
        try
        {
            // Checked after registering: a close that began earlier has already failed the pending
            // requests and would never complete this one.
            if (IsClosed)
            {
                throw ClosedException();
            }

            var request = new Outgoing(type, requestId, payload);
            if (!_sendQueue.Writer.TryWrite(request))
            {
                await EnqueueWithinAsync(request, timeout, ct).ConfigureAwait(false);
            }

            var reply = await response.Task.WaitAsync(Remaining(timeout, startedTicks), ct).ConfigureAwait(false);
            if (reply.IsProtocolError)
            {
                throw new RemoteProtocolException(
                    $"{RemoteDescription} could not read request {requestId} (type {type}): "
                    + FrameCodec.DecodeErrorMessage(reply.Payload.Span));
            }

            return reply;
        }
        catch (TimeoutException)
        {
            throw new TimeoutException(
                $"no response from {RemoteDescription} to request {requestId} (type {type}) "
                + $"within {timeout.TotalMilliseconds:0} ms");
        }
        finally
        {
            _pending.TryRemove(requestId, out _);
        }
    }

    /// <summary>Closes at once: queued frames are dropped, waiting requests fail.</summary>
    public void Abort(string reason = "aborted locally") => BeginClose(reason, graceful: false);

    /// <summary>
    /// Closes gracefully: writes the frames already queued, then closes; waiting requests fail.
    /// Idempotent. Do not await it from this connection's own <see cref="FrameHandler"/> (the
    /// close waits, up to a cap, for the reader loop that is running the handler); call
    /// <see cref="Abort"/> there instead.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        BeginClose("closed locally", graceful: true);
        await _completion.Task.ConfigureAwait(false);
    }

    /// <summary>Starts the loops; the owner first gets a chance to set <see cref="Tag"/>.</summary>
    internal void Start()
    {
        if (IsClosed || Interlocked.Exchange(ref _started, 1) != 0)
        {
            return;
        }

        Volatile.Write(ref _writeLoop, Task.Run(WriteLoopAsync));
        _ = Task.Run(ReadLoopAsync);
    }

    private static TimeSpan Remaining(TimeSpan timeout, long startedTicks)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            return timeout;
        }

        var remaining = timeout - Stopwatch.GetElapsedTime(startedTicks);
        return remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero;
    }

    private static string Describe(Exception e) => e switch
    {
        SocketException s => $"{s.Message} ({s.SocketErrorCode})",
        IOException { InnerException: SocketException s } => $"{s.Message} ({s.SocketErrorCode})",
        _ => e.Message,
    };

    private static bool IsTransportFailure(Exception e) =>
        e is IOException or SocketException or ObjectDisposedException or OperationCanceledException;

    private async ValueTask EnqueueSlowAsync(Outgoing frame, CancellationToken ct)
    {
        // Each pass either queues the frame or waits for room; a false wait means the queue closed.
        while (await _sendQueue.Writer.WaitToWriteAsync(ct).ConfigureAwait(false))
        {
            if (_sendQueue.Writer.TryWrite(frame))
            {
                return;
            }
        }

        throw ClosedException();
    }

    private async ValueTask EnqueueWithinAsync(Outgoing frame, TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            await EnqueueSlowAsync(frame, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException("the send queue stayed full");
        }
    }

    private ConnectionClosedException ClosedException()
    {
        var reason = CloseReason;
        return new ConnectionClosedException(
            $"connection to {RemoteDescription} is closed: {(reason.Length == 0 ? "closing" : reason)}");
    }

    private bool IsOwnRequestId(ulong requestId) => (requestId & 1) == (_accepted ? 0UL : 1UL);

    private async Task ReadLoopAsync()
    {
        try
        {
            await ReadFramesAsync().ConfigureAwait(false);
            await DiscardInputAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            BeginClose($"receive failed: {Describe(e)}", graceful: false);
        }
        catch (Exception e)
        {
            Log.UnexpectedFailure(_logger, e, RemoteDescription);
            BeginClose($"receive failed: {e.Message}", graceful: false);
        }
        finally
        {
            _inputEnded.TrySetResult();
            await _input.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Reads and dispatches frames until the peer closes, the stream is malformed, or we close.</summary>
    private async Task ReadFramesAsync()
    {
        while (!IsClosed)
        {
            var result = await _input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            var consumed = ParseFrames(buffer, _inbound, out var malformed);
            _input.AdvanceTo(consumed, buffer.End);
            DispatchBurst.Enter();
            try
            {
                foreach (var frame in _inbound)
                {
                    if (IsClosed)
                    {
                        break;
                    }

                    var dispatched = DispatchAsync(frame);
                    if (!dispatched.IsCompletedSuccessfully)
                    {
                        // Never hold a burst across an await that yields.
                        DispatchBurst.Exit();
                        try
                        {
                            await dispatched.ConfigureAwait(false);
                        }
                        finally
                        {
                            DispatchBurst.Enter();
                        }
                    }
                }
            }
            finally
            {
                DispatchBurst.Exit();
            }

            _inbound.Clear();
            if (malformed is not null)
            {
                CloseWithProtocolError(malformed.Message, requestId: 0);
                return;
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                var remoteError = Volatile.Read(ref _remoteError);
                BeginClose(
                    remoteError is null ? "closed by the remote end" : $"the remote end reported a protocol error: {remoteError}",
                    graceful: true);
                return;
            }
        }
    }

    /// <summary>
    /// After the connection began closing, reads and drops whatever still arrives until the peer
    /// closes too (or the socket is released), so the close does not turn into a reset.
    /// </summary>
    private async Task DiscardInputAsync()
    {
        while (true)
        {
            var result = await _input.ReadAsync().ConfigureAwait(false);
            _input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Parses every whole frame in <paramref name="buffer"/> into <paramref name="frames"/> and
    /// returns the position after the last one. Frames before a malformed one are still returned.
    /// </summary>
    private static SequencePosition ParseFrames(
        ReadOnlySequence<byte> buffer, List<Frame> frames, out ProtocolException? malformed)
    {
        malformed = null;
        var reader = new SequenceReader<byte>(buffer);
        try
        {
            while (FrameCodec.TryReadFrame(ref reader, out var frame))
            {
                frames.Add(frame);
            }
        }
        catch (ProtocolException e)
        {
            malformed = e;
        }

        return reader.Position;
    }

    private async ValueTask DispatchAsync(Frame frame)
    {
        if (frame.RequestId != 0 && IsOwnRequestId(frame.RequestId))
        {
            if (_pending.TryRemove(frame.RequestId, out var waiter))
            {
                waiter.TrySetResult(frame);
            }
            else
            {
                Log.LateResponseDropped(_logger, RemoteDescription, frame.RequestId);
            }

            return;
        }

        if (frame.IsProtocolError)
        {
            // Not an answer to one of our requests: the peer found our stream unreadable and is
            // closing. Keep its words for the close reason.
            var problem = FrameCodec.DecodeErrorMessage(frame.Payload.Span);
            Volatile.Write(ref _remoteError, problem);
            Log.ProtocolErrorReceived(_logger, RemoteDescription, problem);
            return;
        }

        if (_onFrame is null)
        {
            Log.FrameDroppedWithoutHandler(_logger, RemoteDescription, frame.Type);
            return;
        }

        try
        {
            await _onFrame(this, frame).ConfigureAwait(false);
        }
        catch (ProtocolException e)
        {
            CloseWithProtocolError(e.Message, frame.RequestId);
        }
        catch (Exception e)
        {
            Log.HandlerFailed(_logger, e, RemoteDescription, frame.Type);
            BeginClose($"frame handler failed on a frame of type {frame.Type}: {e.Message}", graceful: true);
        }
    }

    private void CloseWithProtocolError(string problem, ulong requestId)
    {
        Log.ProtocolErrorSent(_logger, RemoteDescription, problem);
        var error = new Frame(FrameTypes.ProtocolError, requestId, FrameCodec.EncodeErrorMessage(problem));
        BeginClose($"protocol error: {problem}", graceful: true, error);
    }

    private async Task WriteLoopAsync()
    {
        var queue = _sendQueue.Reader;
        try
        {
            while (await queue.WaitToReadAsync().ConfigureAwait(false))
            {
                // Woken by a frame queued inside a burst (a read's frames, a loop step): let the
                // burst queue the rest, then send them all with one flush.
                await DispatchBurst.UntilEnd();
                int batchBytes = 0;
                while (batchBytes < FlushBytesMax && queue.TryRead(out var frame))
                {
                    batchBytes += Write(frame);
                }

                await _output.FlushAsync().ConfigureAwait(false);
            }

            if (_finalFrame is { } last)
            {
                FrameCodec.Write(_output, last.Type, last.RequestId, last.Payload.Span);
                await _output.FlushAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            BeginClose($"send failed: {Describe(e)}", graceful: false);
        }
        catch (Exception e)
        {
            Log.UnexpectedFailure(_logger, e, RemoteDescription);
            BeginClose($"send failed: {e.Message}", graceful: false);
        }
        finally
        {
            try
            {
                await _output.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransportFailure(e))
            {
                // The socket is gone; there is nothing left to flush to.
            }
        }
    }

    /// <summary>Writes one queued frame into the output buffer; returns the bytes it takes (0: dropped).</summary>
    private int Write(in Outgoing frame)
    {
        var payload = frame.Payload.Span;
        if (frame.Message is { } message)
        {
            if (_encoded.Capacity > EncodeBufferBytesKept)
            {
                _encoded = new ArrayBufferWriter<byte>(256);
                _encoder = new WireWriter(_encoded);
            }

            _encoded.ResetWrittenCount();
            MessageCodec.Encode(message, _encoder);
            payload = _encoded.WrittenSpan;
            if (payload.Length > FrameCodec.PayloadBytesMax)
            {
                Log.OversizeMessageDropped(_logger, RemoteDescription, message.GetType().Name, payload.Length, FrameCodec.PayloadBytesMax);
                return 0;
            }
        }

        FrameCodec.Write(_output, frame.Type, frame.RequestId, payload);
        return FrameCodec.EncodedLength(payload.Length);
    }

    /// <summary>
    /// Starts closing; the first caller's reason wins. A graceful close first writes what is
    /// queued (then <paramref name="finalFrame"/>, if any), shuts the send side and waits, capped,
    /// for the peer to close; an abrupt one releases the socket at once.
    /// </summary>
    private void BeginClose(string reason, bool graceful, Frame? finalFrame = null)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        Volatile.Write(ref _closeReason, reason);
        _finalFrame = finalFrame;
        _sendQueue.Writer.TryComplete();
        Log.ConnectionClosed(_logger, RemoteDescription, reason);
        FailPending();
        _ = FinishCloseAsync(graceful);
    }

    private void FailPending()
    {
        foreach (var requestId in _pending.Keys)
        {
            if (_pending.TryRemove(requestId, out var waiter))
            {
                waiter.TrySetException(ClosedException());
            }
        }
    }

    private async Task FinishCloseAsync(bool graceful)
    {
        try
        {
            if (graceful && Volatile.Read(ref _started) != 0)
            {
                await Volatile.Read(ref _writeLoop).WaitAsync(CloseDrainTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                ShutdownSend();
                await _inputEnded.Task.WaitAsync(CloseLingerTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
        finally
        {
            // The stream first: a reactor stream leaves the epoll set while its descriptor is open.
            await _stream.DisposeAsync().ConfigureAwait(false);
            _socket.Dispose();
            await Volatile.Read(ref _writeLoop).WaitAsync(CloseDrainTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _completion.TrySetResult();
        }
    }

    private void ShutdownSend()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already reset or released by the peer; the socket is disposed next anyway.
        }
    }
}
