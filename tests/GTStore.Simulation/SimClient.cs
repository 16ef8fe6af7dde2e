using GTStore.Core;
using GTStore.Core.Messages;

namespace GTStore.Simulation;

/// <summary>
/// A client in the simulation, shaped like the client library: init asks the manager for a
/// forwarder; a request whose forwarder does not answer in time re-inits and resends (reads), or
/// reports the outcome unknown (writes).
/// </summary>
public sealed class SimClient(SimCluster cluster)
{
    public NodeId Forwarder { get; private set; } = NodeId.None;

    public string? InitError { get; private set; }

    public void Init(Action onDone)
    {
        cluster.ManagerRequest(new ClientInitRequest(), reply =>
        {
            if (reply is ClientInitReply ok)
                Forwarder = ok.Forwarder;
            else
                InitError = ((ErrorReply)reply).Message;
            onDone();
        });
    }

    /// <summary>Sends <paramref name="request"/>; <paramref name="onReply"/> gets exactly one answer.</summary>
    public void Send(ClientRequest request, Action<ClientReply> onReply, int attemptsLeft = 3)
    {
        var answered = false;
        cluster.ClientRequest(Forwarder, request, reply =>
        {
            if (answered)
                return;
            answered = true;
            onReply(reply);
        });
        cluster.Schedule(5_000, () =>
        {
            if (answered)
                return;
            answered = true;
            if (request.Op != ClientOp.Get || attemptsLeft <= 1)
            {
                onReply(new ClientReply(ReplyStatus.Unknown, NodeId.None, null, "client timed out"));
                return;
            }
            Init(() => Send(request, onReply, attemptsLeft - 1));
        });
    }
}
