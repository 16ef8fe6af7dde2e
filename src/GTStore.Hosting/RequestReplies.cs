using System.Collections.Concurrent;
using GTStore.Core.Messages;
using GTStore.Protocol;
using GTStore.Transport;
using Microsoft.Extensions.Logging;

namespace GTStore.Hosting;

/// <summary>
/// Maps the opaque handles a machine sees to (connection, request id), so that a reply produced
/// on the loop goes back on the connection its request came from.
/// </summary>
public sealed class RequestReplies
{
    private readonly ConcurrentDictionary<long, (FrameConnection Connection, ulong RequestId)> _pending = new();
    private readonly ConcurrentDictionary<long, ILocalReply> _local = new();
    private long _next;

    public int Pending => _pending.Count + _local.Count;

    public long Register(FrameConnection connection, ulong requestId)
    {
        var handle = Interlocked.Increment(ref _next);
        _pending[handle] = (connection, requestId);
        return handle;
    }

    /// <summary>A handle whose reply completes a task in this process (requests from the RESP server).</summary>
    public long RegisterLocal(ILocalReply completion)
    {
        var handle = Interlocked.Increment(ref _next);
        _local[handle] = completion;
        return handle;
    }

    public void Reply(long handle, Message reply)
    {
        if (_pending.TryRemove(handle, out var target))
            _ = SendAsync(target.Connection, target.RequestId, reply);
        else if (_local.TryRemove(handle, out var completion))
            completion.Complete(reply);
    }

    /// <summary>Answers a request directly (off the loop); a closed connection drops the answer.</summary>
    public static async Task SendAsync(FrameConnection connection, ulong requestId, Message reply)
    {
        try
        {
            await connection.SendAsync(requestId, reply).ConfigureAwait(false);
        }
        catch (ConnectionClosedException)
        {
            // The requester is gone; its own timeout reports the outcome.
        }
    }

    /// <summary>
    /// Decodes a frame into a message. A malformed payload throws <see cref="ProtocolException"/>
    /// out of the frame handler: the transport answers one ProtocolError naming the problem and
    /// closes the connection, since after a bad frame nothing on it can be trusted.
    /// </summary>
    public static Message Decode(FrameConnection connection, Frame frame, ILogger logger)
    {
        try
        {
            return MessageCodec.Decode(frame.Type, frame.Payload.Span);
        }
        catch (ProtocolException e)
        {
            HostLog.MalformedMessage(logger, connection.RemoteDescription, e.Message);
            throw;
        }
    }
}

/// <summary>A reply awaited in this process (<see cref="RequestReplies.RegisterLocal"/>).</summary>
public interface ILocalReply
{
    void Complete(Message reply);
}

/// <summary>Completes its task with the reply, which must be a <typeparamref name="T"/>.</summary>
public sealed class LocalReply<T>(TaskCreationOptions options = TaskCreationOptions.None) : TaskCompletionSource<T>(options), ILocalReply
    where T : Message
{
    public void Complete(Message reply) => TrySetResult((T)reply);
}
