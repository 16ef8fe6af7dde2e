using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Protocol;
using GTStore.Storage;

namespace GTStore.Simulation;

/// <summary>
/// A whole cluster in one thread: the production <see cref="ManagerMachine"/> and
/// <see cref="NodeMachine"/>s over a simulated network with seeded delays, driven by a virtual
/// clock. Every message crosses the real wire codec, so the simulation also exercises encoding.
/// Same seed, same run.
/// </summary>
public sealed class SimCluster
{
    private readonly PriorityQueue<Action, (long Time, long Seq)> _events = new();
    private readonly Dictionary<long, Action<Message>> _replyCallbacks = [];
    private readonly Outbox _managerOut = new();
    private long _seq;
    private long _nextHandle = 1;
    private int _nextPid = 1000;

    public SimCluster(int seed, ClusterConfig config, int maxDelayMs = 5)
    {
        Seed = seed;
        Random = new Random(seed);
        MaxDelayMs = maxDelayMs;
        Manager = new ManagerMachine(config, _managerOut);
        Schedule(TickIntervalMs, TickAll);
    }

    public int Seed { get; }

    public Random Random { get; }

    public int MaxDelayMs { get; }

    public const int TickIntervalMs = 10;

    public long NowMs { get; private set; }

    public ManagerMachine Manager { get; }

    public Dictionary<NodeId, SimNode> Nodes { get; } = [];

    public long MessagesDelivered { get; private set; }

    public void Schedule(long delayMs, Action action) => _events.Enqueue(action, (NowMs + delayMs, _seq++));

    /// <summary>Runs events until <paramref name="done"/> holds; fails with the seed if virtual time runs out.</summary>
    public void RunUntil(Func<bool> done, long maxVirtualMs, string what)
    {
        var limit = NowMs + maxVirtualMs;
        while (!done())
        {
            if (!_events.TryDequeue(out var action, out var at) || at.Time > limit)
                throw new SimulationException(Seed, $"{what}: not reached within {maxVirtualMs} ms of virtual time (now {NowMs} ms)");
            NowMs = Math.Max(NowMs, at.Time);
            action();
        }
    }

    /// <summary>Starts a node process: it asks the manager to join, like <c>gtstore node</c> does.</summary>
    public SimNode StartNode()
    {
        var pid = _nextPid++;
        var node = new SimNode(pid, new MemoryEngine());
        ManagerRequest(new JoinRequest($"sim://{pid}", pid), reply =>
        {
            var join = (JoinReply)reply;
            node.Machine.OnJoined(join.Node, join.Config);
            Nodes[join.Node] = node;
        });
        return node;
    }

    /// <summary>A request to the manager over the network; <paramref name="onReply"/> gets the answer.</summary>
    public void ManagerRequest(Message request, Action<Message> onReply)
    {
        var handle = _nextHandle++;
        _replyCallbacks[handle] = onReply;
        var wire = Wire(request);
        Schedule(Delay(), () =>
        {
            Manager.OnRequest(NowMs, handle, wire);
            DrainManager();
        });
    }

    /// <summary>A client request to node <paramref name="forwarder"/>; <paramref name="onReply"/> gets the answer.</summary>
    public void ClientRequest(NodeId forwarder, ClientRequest request, Action<ClientReply> onReply)
    {
        var handle = _nextHandle++;
        _replyCallbacks[handle] = m => onReply((ClientReply)m);
        var wire = Wire(request);
        Schedule(Delay(), () =>
        {
            if (!Nodes.TryGetValue(forwarder, out var node) || !node.Alive)
                return; // The client's own timeout covers a dead forwarder.
            node.Machine.OnClientRequest(NowMs, handle, (ClientRequest)wire);
            Drain(node);
        });
    }

    private long Delay() => 1 + Random.Next(MaxDelayMs);

    private static Message Wire(Message m) => MessageCodec.Decode(MessageCodec.TypeOf(m), MessageCodec.Encode(m));

    private void TickAll()
    {
        Manager.Tick(NowMs);
        DrainManager();
        foreach (var node in Nodes.Values.Where(n => n.Alive).ToList())
        {
            node.Machine.Tick(NowMs);
            Drain(node);
        }
        Schedule(TickIntervalMs, TickAll);
    }

    private void DrainManager()
    {
        if (_managerOut.Persist is { } snapshot)
            LastSnapshot = (ManagerSnapshot)Wire(snapshot);
        Route(NodeId.Manager, _managerOut);
    }

    /// <summary>The manager's last persisted state, as its host would have written it.</summary>
    public ManagerSnapshot? LastSnapshot { get; private set; }

    private void Drain(SimNode node)
    {
        if (node.Outbox.Exit)
            node.Alive = false;
        Route(node.Machine.Self, node.Outbox);
    }

    private void Route(NodeId from, Outbox outbox)
    {
        foreach (var (handle, reply) in outbox.Replies)
        {
            var wire = Wire(reply);
            Schedule(Delay(), () =>
            {
                if (_replyCallbacks.Remove(handle, out var callback))
                    callback(wire);
            });
        }
        foreach (var (to, message) in outbox.Sends)
            Deliver(from, to, Wire(message));
        outbox.Clear();
    }

    private void Deliver(NodeId from, NodeId to, Message message)
    {
        Schedule(Delay(), () =>
        {
            MessagesDelivered++;
            if (to == NodeId.Manager)
            {
                Manager.OnMessage(NowMs, message);
                DrainManager();
                return;
            }
            if (!Nodes.TryGetValue(to, out var node) || !node.Alive)
            {
                if (Nodes.TryGetValue(from, out var sender) && sender.Alive)
                {
                    sender.Machine.OnUnreachable(NowMs, to, message);
                    Drain(sender);
                }
                return;
            }
            node.Machine.OnMessage(NowMs, message);
            Drain(node);
        });
    }
}

/// <summary>One simulated node process.</summary>
public sealed class SimNode
{
    public SimNode(int pid, MemoryEngine engine)
    {
        Engine = engine;
        Machine = new NodeMachine(engine, Outbox, pid);
    }

    public MemoryEngine Engine { get; }

    public Outbox Outbox { get; } = new();

    public NodeMachine Machine { get; }

    public bool Alive { get; set; } = true;
}

public sealed class SimulationException(int seed, string message)
    : Exception($"{message} [seed {seed}; replay with GTSTORE_SIM_SEED={seed} dotnet test tests/GTStore.Simulation]")
{
    public int Seed { get; } = seed;
}
