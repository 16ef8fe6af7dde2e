using GTStore.Core.Messages;

namespace GTStore.Core;

/// <summary>
/// Effects produced by a state machine step, carried out by the host (sockets, files) or by the
/// simulation. The host drains it after every step.
/// </summary>
public sealed class Outbox
{
    /// <summary>One-way messages to nodes (or <see cref="NodeId.Manager"/>).</summary>
    public List<(NodeId To, Message Message)> Sends { get; } = [];

    /// <summary>Answers to requests, by the handle the host gave with the request.</summary>
    public List<(long Handle, Message Reply)> Replies { get; } = [];

    /// <summary>Manager state to write durably before the effects above are carried out.</summary>
    public ManagerSnapshot? Persist { get; set; }

    /// <summary>The node has left the cluster and its process should exit.</summary>
    public bool Exit { get; set; }

    public void Send(NodeId to, Message message) => Sends.Add((to, message));

    public void Reply(long handle, Message reply) => Replies.Add((handle, reply));

    public void Clear()
    {
        Sends.Clear();
        Replies.Clear();
        Persist = null;
    }
}
