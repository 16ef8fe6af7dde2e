using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using GTStore.Core.Messages;
using GTStore.Protocol;
using GTStore.Protocol.Resp;
using GTStore.Transport;

namespace GTStore.Node.Resp;

/// <summary>
/// One Redis client's connection. The read loop parses every request that has arrived (up to
/// <see cref="BatchCommandsMax"/>), starts them all, writes their replies in request order as
/// they complete and flushes once per batch. Requests run concurrently except that a request
/// touching a key that an earlier, still running request of the batch touches (and one of the
/// two writes) waits for the earlier ones first: a pipelined <c>SET k</c> then <c>GET k</c>
/// reads its own write, as it would on Redis.
/// </summary>
internal sealed partial class RespConnection
{
    /// <summary>Most requests parsed and started per read; more wait for the next round.</summary>
    private const int BatchCommandsMax = 1024;

    /// <summary>Reply bytes buffered before an early flush, so large replies do not pile up in memory.</summary>
    private const int UnflushedBytesMax = 1024 * 1024;

    /// <summary>Size of the pipe buffers between the socket stream and the loop.</summary>
    private const int PipeBufferBytes = 16 * 1024;

    /// <summary>Most bytes read and dropped after QUIT or a protocol error while waiting for the client to close.</summary>
    private const int LingerBytesMax = 1024 * 1024;

    /// <summary>
    /// How long a closing connection reads (and drops) after shutting down its send side, waiting
    /// for the client to close first: closing with unread bytes would send a TCP reset, which can
    /// destroy the last reply (the protocol error) before the client reads it.
    /// </summary>
    private static readonly TimeSpan LingerTimeout = TimeSpan.FromSeconds(2);

    private readonly RespServer _server;
    private readonly RespBackend _backend;
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<RespCommand> _batch = [];
    private readonly List<Pending> _pending = [];
    private readonly Dictionary<byte[], bool> _inFlightKeys = new(ByteArrayComparer.Instance);
    private RespParseProgress _parseProgress;

    public RespConnection(RespServer server, Socket socket, long id)
    {
        _server = server;
        _backend = server.Backend;
        _socket = socket;
        _stream = SocketStreams.Open(socket);
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: PipeBufferBytes, leaveOpen: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: PipeBufferBytes, leaveOpen: true));
        Id = id;
        Remote = socket.RemoteEndPoint is IPEndPoint remote ? Endpoints.Format(remote) : "?";
        Local = socket.LocalEndPoint is IPEndPoint local ? Endpoints.Format(local) : "?";
    }

    private enum PendingKind : byte
    {
        Reply,
        Get,
        Set,
        Deferred,
    }

    /// <summary>The client id (CLIENT ID), unique per server run.</summary>
    public long Id { get; }

    public string Remote { get; }

    public string Local { get; }

    /// <summary>Set by CLIENT SETNAME or HELLO SETNAME; empty when unnamed.</summary>
    public string Name { get; private set; } = "";

    public string LibraryName { get; private set; } = "";

    public string LibraryVersion { get; private set; } = "";

    /// <summary>Name of the last command run, for CLIENT LIST.</summary>
    public string LastCommand { get; private set; } = "NULL";

    public long ConnectedMs { get; } = Environment.TickCount64;

    /// <summary>Completes (never faults) when the connection is closed and its socket released.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Closes the connection now: in-flight requests are cancelled, unsent replies dropped.</summary>
    public void Abort()
    {
        try
        {
            _closing.Cancel();
        }
        catch (AggregateException)
        {
            // A cancellation callback failed; the connection is closing anyway.
        }
    }

    public async Task RunAsync()
    {
        string reason = "closed by the client";
        bool linger = false;
        try
        {
            (reason, linger) = await ServeAsync().ConfigureAwait(false);
            if (linger)
            {
                await LingerAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_closing.IsCancellationRequested)
        {
            reason = "the server is stopping";
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            reason = $"transport failed: {e.Message}";
        }
        catch (Exception e)
        {
            RespLog.UnexpectedFailure(_server.Logger, e, Id, Remote);
            reason = $"failed: {e.Message}";
        }
        finally
        {
            Abort();
            await _input.CompleteAsync().ConfigureAwait(false);
            try
            {
                await _output.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransportFailure(e))
            {
                // Replies still buffered cannot reach a client that is gone.
            }

            await _stream.DisposeAsync().ConfigureAwait(false);
            _socket.Dispose();
            RespLog.ConnectionClosed(_server.Logger, Id, Remote, reason);
            _completion.TrySetResult();
        }
    }

    private static bool IsTransportFailure(Exception e) =>
        e is IOException or SocketException or ObjectDisposedException;

    /// <summary>Serves requests until the client leaves; returns why, and whether to linger before closing.</summary>
    private async Task<(string Reason, bool Linger)> ServeAsync()
    {
        var ct = _closing.Token;
        while (true)
        {
            var result = await _input.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            var malformed = ParseBatch(buffer, out var consumed);
            bool full = _batch.Count == BatchCommandsMax;
            _input.AdvanceTo(consumed, full ? consumed : buffer.End);
            bool quit;
            try
            {
                quit = await ExecuteBatchAsync().ConfigureAwait(false);
            }
            finally
            {
                _batch.Clear();
            }

            if (!quit && malformed is not null)
            {
                RespLog.ProtocolError(_server.Logger, Id, Remote, malformed.Message);
                RespWriter.WriteError(_output, "ERR Protocol error: " + malformed.Message);
            }

            var flushed = await _output.FlushAsync(ct).ConfigureAwait(false);
            if (quit)
            {
                return ("QUIT", true);
            }

            if (malformed is not null)
            {
                return ($"protocol error: {malformed.Message}", true);
            }

            if (flushed.IsCompleted)
            {
                return ("the client stopped reading", false);
            }

            if ((result.IsCompleted || result.IsCanceled) && !full)
            {
                return ("closed by the client", false);
            }
        }
    }

    /// <summary>
    /// Parses the requests in <paramref name="buffer"/> into the batch. Requests before a
    /// malformed one are still returned, to be answered before the protocol error.
    /// </summary>
    private ProtocolException? ParseBatch(ReadOnlySequence<byte> buffer, out SequencePosition consumed)
    {
        var reader = new SequenceReader<byte>(buffer);
        try
        {
            while (_batch.Count < BatchCommandsMax && _server.Parser.TryReadCommand(ref reader, out var command, ref _parseProgress))
            {
                if (!command.IsEmpty)
                {
                    _batch.Add(command);
                }
            }

            return null;
        }
        catch (ProtocolException e)
        {
            return e;
        }
        finally
        {
            consumed = reader.Position;
        }
    }

    /// <summary>
    /// Runs the batch; true when it held QUIT (requests after QUIT are not run). The commands
    /// started between two waits form one <see cref="DispatchBurst"/>, so the node applies their
    /// requests in one step and sends their messages with one flush per peer.
    /// </summary>
    private async ValueTask<bool> ExecuteBatchAsync()
    {
        DispatchBurst.Enter();
        try
        {
            foreach (var command in _batch)
            {
                var spec = RespCommandTable.Find(command.Name);
                if (spec is { Kind: RespCommandKind.Quit })
                {
                    await DrainOutsideBurstAsync().ConfigureAwait(false);
                    RespWriter.WriteOk(_output);
                    return true;
                }

                if (spec is { HasKeys: true } && spec.ArityFits(command.Count) && MustWaitForInFlight(spec, command))
                {
                    await DrainOutsideBurstAsync().ConfigureAwait(false);
                }

                Start(spec, command);
                if (_output.UnflushedBytes > UnflushedBytesMax)
                {
                    await DrainOutsideBurstAsync(flush: true).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            DispatchBurst.Exit();
        }

        await DrainAsync().ConfigureAwait(false);
        return false;
    }

    /// <summary>Leaves the burst (posting the requests started in it), drains, and enters a new one.</summary>
    private async ValueTask DrainOutsideBurstAsync(bool flush = false)
    {
        DispatchBurst.Exit();
        try
        {
            await DrainAsync().ConfigureAwait(false);
            if (flush)
            {
                await _output.FlushAsync(_closing.Token).ConfigureAwait(false);
            }
        }
        finally
        {
            DispatchBurst.Enter();
        }
    }

    /// <summary>
    /// Registers the command's keys as in flight; true when one of them is already in flight and
    /// one of the two commands writes it, so the earlier ones must finish first.
    /// </summary>
    private bool MustWaitForInFlight(RespCommandSpec spec, RespCommand command)
    {
        if (_pending.Count == 0)
        {
            _inFlightKeys.Clear();
        }

        bool conflict = false;
        int end = spec.KeysEnd(command.Count);
        for (int i = spec.FirstKey; i < end && !conflict; i += spec.KeyStep)
        {
            conflict = _inFlightKeys.TryGetValue(command[i], out bool written) && (written || spec.Writes);
        }

        if (conflict)
        {
            _inFlightKeys.Clear();
        }

        for (int i = spec.FirstKey; i < end; i += spec.KeyStep)
        {
            ref bool written = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_inFlightKeys, command[i], out _);
            written |= spec.Writes;
        }

        return conflict;
    }

    /// <summary>
    /// Writes every pending reply in request order, waiting for each in turn. The waits are in this
    /// method itself, not in one per reply: an async method allocates its state once, on its first
    /// wait, so a pipeline of replies costs one allocation instead of one per reply.
    /// </summary>
    private async ValueTask DrainAsync()
    {
        try
        {
            for (int i = 0; i < _pending.Count; i++)
            {
                var pending = _pending[i];
                RespReply reply;
                try
                {
                    reply = pending.Kind switch
                    {
                        PendingKind.Get => GetReply(await UntilClosing(pending.Request!).ConfigureAwait(false)),
                        PendingKind.Set => SetReply(await UntilClosing(pending.Request!).ConfigureAwait(false)),
                        PendingKind.Deferred => await pending.Deferred!.ConfigureAwait(false),
                        _ => pending.Reply,
                    };
                }
                catch (Exception e) when (!_closing.IsCancellationRequested)
                {
                    RespLog.CommandFailed(_server.Logger, e, pending.Command, Id);
                    reply = RespReply.Error("ERR internal error: " + e.Message);
                }
                reply.WriteTo(_output);
                if (_output.UnflushedBytes > UnflushedBytesMax)
                {
                    await _output.FlushAsync(_closing.Token).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _pending.Clear();
            _inFlightKeys.Clear();
        }
    }

    /// <summary>The request's task, given up on when the connection closes (a cancellation registered only when it must be waited for).</summary>
    private Task<T> UntilClosing<T>(Task<T> request) => request.IsCompleted ? request : request.WaitAsync(_closing.Token);

    private void Reply(RespReply reply)
    {
        if (_pending.Count == 0)
        {
            reply.WriteTo(_output);
        }
        else
        {
            _pending.Add(new Pending(PendingKind.Reply, reply, null, null, ""));
        }
    }

    private void ReplyLater(PendingKind kind, Task<ClientReply> request, string command)
    {
        if (_pending.Count == 0 && request.IsCompletedSuccessfully)
        {
            (kind == PendingKind.Get ? GetReply(request.Result) : SetReply(request.Result)).WriteTo(_output);
        }
        else
        {
            _pending.Add(new Pending(kind, default, request, null, command));
        }
    }

    private void ReplyLater(Task<RespReply> deferred, string command)
    {
        if (_pending.Count == 0 && deferred.IsCompletedSuccessfully)
        {
            deferred.Result.WriteTo(_output);
        }
        else
        {
            _pending.Add(new Pending(PendingKind.Deferred, default, null, deferred, command));
        }
    }

    /// <summary>Reads and drops what the client still sends until it closes, within limits.</summary>
    private async Task LingerAsync()
    {
        _socket.Shutdown(SocketShutdown.Send);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_closing.Token);
        timeout.CancelAfter(LingerTimeout);
        long dropped = 0;
        try
        {
            while (dropped <= LingerBytesMax)
            {
                var result = await _input.ReadAsync(timeout.Token).ConfigureAwait(false);
                dropped += result.Buffer.Length;
                _input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The client did not close in time; close anyway.
        }
    }

    private readonly record struct Pending(
        PendingKind Kind, RespReply Reply, Task<ClientReply>? Request, Task<RespReply>? Deferred, string Command);
}
