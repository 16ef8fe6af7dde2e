using GTStore.Core;
using GTStore.Core.Messages;

namespace GTStore.Simulation;

/// <summary>
/// What the simulated network does to messages. The default (<see cref="None"/>) only delays
/// them by 1..5 ms, as the fault-free seed scenario expects.
/// </summary>
public sealed record NetworkFaults
{
    public static readonly NetworkFaults None = new();

    /// <summary>Chance that a message (or request, or reply) is lost.</summary>
    public double DropProbability { get; init; }

    /// <summary>Chance that a one-way node or manager message arrives twice (each copy with its own delay).</summary>
    public double DuplicateProbability { get; init; }

    public int MinDelayMs { get; init; } = 1;

    public int MaxDelayMs { get; init; } = 5;

    /// <summary>Chance that a message takes a slow path (up to <see cref="SlowMaxDelayMs"/>), overtaken by later ones.</summary>
    public double SlowProbability { get; init; }

    public int SlowMaxDelayMs { get; init; }

    public override string ToString() =>
        $"drop {DropProbability:P1}, duplicate {DuplicateProbability:P1}, delay {MinDelayMs}..{MaxDelayMs} ms, " +
        $"slow {SlowProbability:P1} up to {SlowMaxDelayMs} ms";
}

/// <summary>
/// A whole cluster in one thread: the production <see cref="ManagerMachine"/> and
/// <see cref="NodeMachine"/>s over a simulated network and simulated disks, driven by a virtual
/// clock and one seeded <see cref="System.Random"/>. Every message crosses the real wire codec.
/// Faults: message drops, duplicates, delays that reorder, partitions, node crashes (unflushed
/// writes and in-flight messages lost) and restarts, manager crashes and restarts from its last
/// persisted snapshot. Same seed, same run.
/// </summary>
public sealed partial class SimCluster
{
    /// <summary>The endpoint clients and the admin CLI send from: always on the manager's side of a partition.</summary>
    public static readonly NodeId ClientSide = NodeId.None;

    private readonly PriorityQueue<Action, (long Time, long Seq)> _events = new();
    private readonly Dictionary<long, Action<Message>> _replyCallbacks = [];
    private readonly Dictionary<long, NodeId> _requester = [];
    private readonly Outbox _managerOut = new();
    private readonly Dictionary<NodeId, int> _partitionGroup = [];
    private readonly ClusterConfig _config;
    private readonly Queue<string> _trace = new();
    private long _seq;
    private long _nextHandle = 1;
    private int _nextPid = 1000;
    private int _nextGroup = 1;
    private (long, long) _loggedRingState;

    public SimCluster(int seed, ClusterConfig config, int maxDelayMs = 5)
    {
        Seed = seed;
        Random = new Random(seed);
        _config = config;
        Faults = NetworkFaults.None with { MaxDelayMs = maxDelayMs };
        Manager = new ManagerMachine(config, _managerOut);
        TraceEnabled = Environment.GetEnvironmentVariable("GTSTORE_SIM_TRACE") is "1" or "true";
        TraceKey = Environment.GetEnvironmentVariable("GTSTORE_SIM_TRACE_KEY");
        Schedule(TickIntervalMs, TickAll);
    }

    public int Seed { get; }

    public Random Random { get; }

    public int MaxDelayMs => Faults.MaxDelayMs;

    /// <summary>What the network does to messages now; <see cref="NetworkFaults.None"/> for a healthy network.</summary>
    public NetworkFaults Faults { get; set; }

    public const int TickIntervalMs = 10;

    public long NowMs { get; private set; }

    /// <summary>The manager (the last instance, while it is down).</summary>
    public ManagerMachine Manager { get; private set; }

    public bool ManagerAlive { get; private set; } = true;

    /// <summary>Bumped on every manager crash and restart: messages to or from an older incarnation are lost.</summary>
    public int ManagerIncarnation { get; private set; }

    /// <summary>Node processes by the id the manager gave them (restarted nodes keep theirs, unless it was removed).</summary>
    public Dictionary<NodeId, SimNode> Nodes { get; } = [];

    public long MessagesDelivered { get; private set; }

    public long MessagesDropped { get; private set; }

    public long MessagesDuplicated { get; private set; }

    /// <summary>
    /// Keys of client requests whose Forward was delivered twice. The transport never duplicates a
    /// frame (PeerConnections), so a request run twice is a simulation fault only.
    /// </summary>
    public HashSet<string> DuplicatedForwards { get; } = [];

    public long MessagesPartitioned { get; private set; }

    /// <summary>Messages lost because their sender or receiver crashed while they were in flight.</summary>
    public long MessagesLostInCrashes { get; private set; }

    /// <summary>The manager's last persisted state, as its host would have written it.</summary>
    public ManagerSnapshot? LastSnapshot { get; private set; }

    /// <summary>Faults and membership events, in order, with their virtual time (always kept; short).</summary>
    public List<string> EventLog { get; } = [];

    /// <summary>GTSTORE_SIM_TRACE=1: keep the last <see cref="TraceCapacity"/> messages for the failure report.</summary>
    public bool TraceEnabled { get; set; }

    /// <summary>GTSTORE_SIM_TRACE_KEY=k: trace every message that carries key k (whole run).</summary>
    public string? TraceKey { get; set; }

    public const int TraceCapacity = 4000;

    public IEnumerable<string> Trace => _trace;

    public void Schedule(long delayMs, Action action) => _events.Enqueue(action, (NowMs + delayMs, _seq++));

    public void Log(string what) => EventLog.Add($"{NowMs,7} ms  {what}");

    private void TraceLine(string line)
    {
        _trace.Enqueue($"{NowMs,7} {line}");
        if (_trace.Count > TraceCapacity && TraceKey is null)
            _trace.Dequeue();
    }

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

    /// <summary>Runs every event due in the next <paramref name="ms"/> of virtual time.</summary>
    public void RunFor(long ms)
    {
        var until = NowMs + ms;
        while (_events.TryPeek(out _, out var at) && at.Time <= until)
        {
            var action = _events.Dequeue();
            NowMs = Math.Max(NowMs, at.Time);
            action();
        }
        NowMs = Math.Max(NowMs, until);
    }

    /// <summary>Like <see cref="RunUntil"/>, but checks <paramref name="done"/> only every <paramref name="pollMs"/> (for costly checks).</summary>
    public void RunUntilPolled(Func<bool> done, long maxVirtualMs, Func<string> what, long pollMs = 100)
    {
        var limit = NowMs + maxVirtualMs;
        while (!done())
        {
            if (NowMs >= limit)
                throw new SimulationException(Seed, $"{what()}: not reached within {maxVirtualMs} ms of virtual time (now {NowMs} ms)");
            RunFor(Math.Min(pollMs, limit - NowMs));
        }
    }

    // ---- nodes -------------------------------------------------------------------------------

    /// <summary>Starts a node process: it asks the manager to join, like <c>gtstore node</c> does.</summary>
    public SimNode StartNode()
    {
        var pid = _nextPid++;
        var disk = new SimDisk();
        var node = new SimNode(pid, $"sim://{pid}", disk);
        if (TraceKey is { } traced)
        {
            var k = System.Text.Encoding.UTF8.GetBytes(traced);
            disk.Traced = (op, key, range) =>
            {
                if (key is null ? range is { } r && r.Contains(KeyHash.Of(k)) : key.AsSpan().SequenceEqual(k))
                    TraceLine($"disk {node.Name}: {op}");
            };
        }
        Join(node, NodeId.None);
        return node;
    }

    /// <summary>
    /// The process asks the manager to join (as <paramref name="previous"/> after a restart),
    /// retrying while the manager cannot be reached, as NodeHost.JoinAsync does.
    /// </summary>
    private void Join(SimNode node, NodeId previous)
    {
        var incarnation = node.Incarnation;
        var from = previous.IsNode ? previous : ClientSide;
        ManagerRequest(new JoinRequest(node.Address, node.Pid, previous), reply =>
        {
            if (node.Incarnation != incarnation)
                return; // This process died before the answer came.
            if (reply is not JoinReply join)
            {
                Schedule(200, () => Join(node, previous));
                return;
            }
            if (join.DiscardData)
            {
                node.Disk.DropRange(new HashRange(0, 0));
                node.Disk.Flush();
            }
            if (node.Id != join.Node)
            {
                if (node.Id.IsNode && Nodes.TryGetValue(node.Id, out var old) && old == node)
                    Nodes.Remove(node.Id);
                Log($"{node.Name} joined as {join.Node}{(previous.IsNode ? $" (was {previous}; restarted {join.Restarted}, discard {join.DiscardData})" : "")}");
                node.Id = join.Node;
            }
            else
            {
                Log($"{node.Name} back as {join.Node} (restarted {join.Restarted})");
            }
            Nodes[join.Node] = node;
            node.Alive = true;
            node.Joined = true;
            StepNode(node, m => m.OnJoined(join.Node, join.Config));
        }, from, timeoutMs: 5_000);
    }

    /// <summary>
    /// Kills a node process. <paramref name="midStep"/>: it dies while handling its next input,
    /// after the machine stepped but before the host synced and sent the effects, so that step's
    /// writes are lost along with everything it would have sent. Messages in flight to or from it are lost.
    /// </summary>
    public void CrashNode(NodeId id, bool midStep = false)
    {
        var node = Nodes[id];
        if (midStep)
        {
            node.CrashAtNextStep = true;
            node.CrashDeadlineMs = NowMs + 1_000;
            Log($"{node.Name} will crash in the middle of its next step that writes");
            return;
        }
        Kill(node, "crashed");
    }

    private void Kill(SimNode node, string how)
    {
        var unflushed = node.Disk.UnflushedCount;
        var waiting = node.PendingEffects.Sum(e => e.Sends.Count + e.Replies.Count);
        node.Alive = false;
        node.Crashed = true;
        node.CrashAtNextStep = false;
        node.Incarnation++;
        node.Disk.Crash();
        node.Outbox.Clear();
        node.Outbox.Exit = false;
        node.LeftAtMs = -1;
        node.PendingEffects.Clear();
        node.CommitScheduled = false;
        Log($"{node.Name} {how} ({unflushed} unflushed writes and {waiting} effects waiting for the sync lost, {node.Machine.HintCount} hints lost, {node.Machine.OperationsInFlight} ops in flight)");
    }

    /// <summary>Starts a crashed node's process again on its own disk: a new machine that asks to rejoin as its old id.</summary>
    public void RestartNode(NodeId id)
    {
        var node = Nodes[id];
        if (!node.Crashed)
            throw new InvalidOperationException($"{node.Name} has not crashed");
        node.Incarnation++;
        node.Pid = _nextPid++;
        node.Machine = new NodeMachine(node.Disk, node.Outbox, node.Pid);
        node.Crashed = false;
        node.Joined = false;
        // The listener is up before the join (NodeHost.StartAsync), so messages reach the new machine.
        node.Alive = true;
        Log($"{node.Name} restarting (pid {node.Pid}), rejoining as {id}");
        Join(node, id);
    }

    /// <summary>The manager process dies; messages to and from it are lost until it restarts.</summary>
    public void CrashManager(bool midStep = false)
    {
        if (midStep)
        {
            CrashManagerAtNextStep = true;
            Log("manager will crash in the middle of its next step");
            return;
        }
        KillManager("manager crashed");
    }

    public bool CrashManagerAtNextStep { get; private set; }

    private void KillManager(string how)
    {
        ManagerAlive = false;
        CrashManagerAtNextStep = false;
        ManagerIncarnation++;
        _managerOut.Clear();
        Log($"{how} (epoch {Manager.Current.Epoch}, pending {Manager.Pending?.Epoch.ToString() ?? "none"})");
    }

    /// <summary>A new manager process from the last persisted snapshot.</summary>
    public void RestartManager()
    {
        if (ManagerAlive)
            throw new InvalidOperationException("the manager is running");
        ManagerIncarnation++;
        ManagerAlive = true;
        Manager = new ManagerMachine(_config, _managerOut, LastSnapshot);
        Log($"manager restarted from snapshot (epoch {Manager.Current.Epoch}, pending {Manager.Pending?.Epoch.ToString() ?? "none"})");
        StepManager(m => m.Tick(NowMs));
    }

    // ---- partitions ----------------------------------------------------------------------------

    /// <summary>
    /// Cuts <paramref name="side"/> off: its nodes talk only among themselves, not to other nodes,
    /// the manager or clients. Several calls make several sides. Returns the side's handle for <see cref="Heal"/>.
    /// </summary>
    public int Partition(IEnumerable<NodeId> side)
    {
        var group = _nextGroup++;
        var members = side.ToList();
        foreach (var node in members)
            _partitionGroup[node] = group;
        Log($"partition {group}: [{string.Join(", ", members)}] cut off from the rest");
        return group;
    }

    /// <summary>Joins side <paramref name="group"/> back to the rest.</summary>
    public void Heal(int group)
    {
        var members = _partitionGroup.Where(kv => kv.Value == group).Select(kv => kv.Key).ToList();
        foreach (var node in members)
            _partitionGroup.Remove(node);
        if (members.Count > 0)
            Log($"partition {group} healed: [{string.Join(", ", members)}]");
    }

    public void HealPartitions()
    {
        if (_partitionGroup.Count > 0)
            Log("all partitions healed");
        _partitionGroup.Clear();
    }

    public bool IsPartitioned(NodeId node) => _partitionGroup.ContainsKey(node);

    private bool CanTalk(NodeId a, NodeId b) =>
        _partitionGroup.GetValueOrDefault(a) == _partitionGroup.GetValueOrDefault(b);

    // ---- requests ------------------------------------------------------------------------------

    /// <summary>
    /// A request to the manager over the network from <paramref name="from"/> (a client by
    /// default); <paramref name="onReply"/> gets exactly one answer: the manager's, an
    /// <see cref="ErrorReply"/> if the manager is down (connection refused), or one after
    /// <paramref name="timeoutMs"/> if the request or its answer was lost.
    /// </summary>
    public void ManagerRequest(Message request, Action<Message> onReply, NodeId? from = null, long? timeoutMs = null)
    {
        var handle = _nextHandle++;
        var requester = from ?? ClientSide;
        _replyCallbacks[handle] = onReply;
        _requester[handle] = requester;
        var wire = Wire(request);
        if (timeoutMs is { } timeout)
        {
            Schedule(timeout, () =>
            {
                if (_replyCallbacks.Remove(handle, out var callback))
                {
                    _requester.Remove(handle);
                    callback(new ErrorReply("timed out waiting for the manager"));
                }
            });
        }
        Transmit(requester, NodeId.Manager, wire, duplicable: false, () =>
        {
            if (!ManagerAlive)
            {
                // Connection refused: the requester learns at once.
                Transmit(NodeId.Manager, requester, wire, duplicable: false, () => Answer(handle, new ErrorReply("manager unreachable: connection refused")), ignoreCrash: true);
                return;
            }
            StepManager(m => m.OnRequest(NowMs, handle, wire));
        });
    }

    /// <summary>A client request to node <paramref name="forwarder"/>; <paramref name="onReply"/> gets the answer, if any comes.</summary>
    public void ClientRequest(NodeId forwarder, ClientRequest request, Action<ClientReply> onReply)
    {
        var handle = _nextHandle++;
        _replyCallbacks[handle] = m => onReply((ClientReply)m);
        _requester[handle] = ClientSide;
        var wire = Wire(request);
        Transmit(ClientSide, forwarder, wire, duplicable: false, () =>
        {
            if (!Nodes.TryGetValue(forwarder, out var node) || !node.Alive)
                return; // The client's own timeout covers a dead forwarder.
            StepNode(node, m => m.OnClientRequest(NowMs, handle, (ClientRequest)wire));
        });
    }

    /// <summary>Forgets a request's callback (the caller stopped waiting).</summary>
    public void Abandon(long handle)
    {
        _replyCallbacks.Remove(handle);
        _requester.Remove(handle);
    }

    private void Answer(long handle, Message reply)
    {
        _requester.Remove(handle);
        if (_replyCallbacks.Remove(handle, out var callback))
            callback(reply);
    }
}

/// <summary>One simulated node process, and its disk, which outlives crashes.</summary>
public sealed class SimNode
{
    public SimNode(int pid, string address, SimDisk disk)
    {
        Pid = pid;
        Address = address;
        Disk = disk;
        _startName = $"node(pid {pid})";
        Machine = new NodeMachine(disk, Outbox, pid);
    }

    /// <summary>The id the manager gave it; None until the first join is answered.</summary>
    public NodeId Id { get; internal set; } = NodeId.None;

    private readonly string _startName;

    public string Name => Id.IsNode ? $"{Id}" : _startName;

    public int Pid { get; internal set; }

    public string Address { get; }

    public SimDisk Disk { get; }

    public IStorageEngine Engine => Disk;

    public Outbox Outbox { get; } = new();

    public NodeMachine Machine { get; internal set; }

    /// <summary>The process runs (it may still be waiting for its join to be answered).</summary>
    public bool Alive { get; set; }

    /// <summary>The join has been answered: the machine knows its id.</summary>
    public bool Joined { get; internal set; }

    public bool Crashed { get; internal set; }

    /// <summary>Left the cluster and exited (not a crash; never restarted).</summary>
    public bool Left { get; internal set; }

    public bool CrashAtNextStep { get; internal set; }

    /// <summary>Effects of steps waiting for the next sync (group commit), in order.</summary>
    public List<(List<(NodeId To, Message Message)> Sends, List<(long Handle, Message Reply)> Replies)> PendingEffects { get; } = [];

    public bool CommitScheduled { get; internal set; }

    /// <summary>When the node was told it left (it drains, then exits); -1 before.</summary>
    public long LeftAtMs { get; internal set; } = -1;

    /// <summary>A mid-step crash waits for a step that writes, at most until this time.</summary>
    public long CrashDeadlineMs { get; internal set; }

    public int Incarnation { get; internal set; }
}

public sealed class SimulationException(int seed, string message)
    : Exception($"{message} [seed {seed}; replay with GTSTORE_SIM_SEED={seed} dotnet test tests/GTStore.Simulation]")
{
    public int Seed { get; } = seed;
}
