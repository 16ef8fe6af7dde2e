using System.Collections.Immutable;
using GTStore.Core.Messages;

namespace GTStore.Core;

/// <summary>
/// The manager's logic as a state machine: it hands out node and client ids and forwarders, owns
/// the ring and its epoch, and drives one membership change at a time: publish the pending ring,
/// wait until every node has it (so writes reach old and new replicas), start the planned
/// transfers, and commit the new epoch when all are done. Everything it must not forget goes out
/// as a <see cref="ManagerSnapshot"/> to persist.
/// </summary>
public sealed partial class ManagerMachine
{
    private sealed record Member(string Address, int Pid, MemberState State);

    private readonly Outbox _out;
    private readonly SortedDictionary<NodeId, Member> _members = [];
    private readonly Dictionary<NodeId, (long Current, long Pending)> _acked = [];
    // Failure detector (local view): when each node was last heard from.
    private readonly Dictionary<NodeId, long> _lastSeenMs = [];
    private long _nowMs;
    private readonly HashSet<int> _doneTasks = [];
    private readonly Dictionary<NodeId, List<long>> _leaveWaiters = [];
    // Addresses of nodes that just left, so the final messages to them can still be routed.
    private readonly Dictionary<NodeId, string> _departed = [];
    private List<TransferTask> _plan = [];
    private bool _transfersStarted;
    private int _planAttempt;
    private long _lastRetryMs;
    private int _nextNodeId;
    private long _nextClientId;
    private int _forwarderCursor;

    public ManagerMachine(ClusterConfig config, Outbox outbox, ManagerSnapshot? snapshot = null)
    {
        _out = outbox;
        Config = config;
        _nextNodeId = 1;
        _nextClientId = 1;
        if (snapshot is not null)
        {
            Config = snapshot.Config;
            Current = snapshot.Current;
            Pending = snapshot.Pending;
            _nextNodeId = snapshot.NextNodeId;
            _nextClientId = snapshot.NextClientId;
            foreach (var m in snapshot.Members)
                _members[m.Node] = new Member(m.Address, m.Pid, m.State);
            if (Pending is not null)
                _plan = PlanFor(Pending);
        }
    }

    public ClusterConfig Config { get; }

    public Ring Current { get; private set; } = Ring.Empty;

    public Ring? Pending { get; private set; }

    /// <summary>Address of a member or of a node still joining, for the host to route sends.</summary>
    public string? AddressOf(NodeId node) =>
        _members.TryGetValue(node, out var m) ? m.Address : _departed.GetValueOrDefault(node);

    /// <summary>A request from a node process, a client or the CLI; answered with <paramref name="handle"/>.</summary>
    public void OnRequest(long nowMs, long handle, Message request)
    {
        _nowMs = Math.Max(_nowMs, nowMs);
        switch (request)
        {
            case JoinRequest m: OnJoin(nowMs, handle, m); break;
            case ClientInitRequest: OnClientInit(handle); break;
            case StatusRequest: _out.Reply(handle, Status()); break;
            case AdminLeave m: OnAdminLeave(nowMs, handle, m.Node); break;
            default: _out.Reply(handle, new ErrorReply($"the manager does not serve {request.GetType().Name}")); break;
        }
    }

    /// <summary>A one-way message from a node.</summary>
    public void OnMessage(long nowMs, Message message)
    {
        _nowMs = Math.Max(_nowMs, nowMs);
        switch (message)
        {
            case Heartbeat m when _members.ContainsKey(m.From):
                Seen(m.From);
                OnHeartbeat(m);
                break;
            case Heartbeat m when m.From.IsNode && m.From.Value < _nextNodeId:
                // A node removed while it was cut off: it must not serve its stale data; it exits.
                _out.Send(m.From, new LeaveDone(m.From));
                break;
            case RingAck m: Seen(m.From); OnRingAck(nowMs, m); break;
            case TransferTaskDone m when Pending is not null && m.TransferId == TransferId:
                _doneTasks.Add(m.TaskIndex);
                CommitIfTransferred(nowMs);
                break;
            default: break;
        }
    }

    private long TransferId => StartTransfers.IdFor(Pending!.Epoch, _planAttempt);

    /// <summary>Time passes: remove long-dead nodes, replan around dead sources, resend what was not acknowledged, start queued changes.</summary>
    public void Tick(long nowMs)
    {
        _nowMs = Math.Max(_nowMs, nowMs);
        RemovePermanentlyFailed();
        if (Pending is null)
            StartNextChange(nowMs);
        else if (_transfersStarted && _plan.Where((t, i) => !_doneTasks.Contains(i)).Any(t => IsDown(t.Source)))
            Replan();
        else
            StartTransfersIfAllAcked(nowMs);
        if (nowMs - _lastRetryMs < Config.MembershipRetryMs)
            return;
        _lastRetryMs = nowMs;
        foreach (var node in Recipients())
        {
            if (_acked.GetValueOrDefault(node) != (Current.Epoch, Pending?.Epoch ?? 0))
                _out.Send(node, new RingUpdate(Config, Current, Pending));
        }
        if (_transfersStarted)
            SendStartTransfers(onlyUnfinished: true);
    }

    /// <summary>
    /// A node down longer than <see cref="ClusterConfig.RemoveAfterMs"/> is removed like a leave
    /// whose data comes from the surviving replicas, as long as N nodes remain.
    /// </summary>
    private void RemovePermanentlyFailed()
    {
        foreach (var (id, member) in _members.ToList())
        {
            if (member.State != MemberState.Up || !Current.Contains(id) || !_lastSeenMs.TryGetValue(id, out var seen)
                || _nowMs - seen <= Config.RemoveAfterMs)
                continue;
            if (_members.Count(kv => kv.Value.State != MemberState.Leaving) - 1 < Config.ReplicationFactor)
                return; // Fewer than N would remain: keep it (down) and wait for it or for a new node.
            _members[id] = member with { State = MemberState.Leaving };
            _out.Persist = Snapshot();
        }
    }

    /// <summary>A source went down mid-transfer: plan again from the replicas that are up, under a new transfer id.</summary>
    private void Replan()
    {
        _planAttempt++;
        _plan = PlanFor(Pending!);
        _doneTasks.Clear();
        SendStartTransfers(onlyUnfinished: false);
        CommitIfTransferred(_nowMs);
    }

    private void Seen(NodeId node)
    {
        if (_members.ContainsKey(node))
            _lastSeenMs[node] = _nowMs;
    }

    /// <summary>
    /// A node is down when nothing was heard from it for the failure timeout. A node not heard
    /// from since this manager started counts from its first tick, so a restarted manager does
    /// not declare everyone down at once.
    /// </summary>
    public bool IsDown(NodeId node)
    {
        if (!_lastSeenMs.TryGetValue(node, out var seen))
        {
            // Before its first input (the constructor replanning a pending change) the machine does
            // not know the time: stamping 0 would make every member down at the first tick.
            if (_nowMs > 0)
                _lastSeenMs[node] = _nowMs;
            return false;
        }
        return _nowMs - seen > Config.FailureTimeoutMs;
    }

    public StatusReply Status()
    {
        var ring = Pending ?? Current;
        var members = _members.Select(kv => new MemberStatus(kv.Key, kv.Value.Address, kv.Value.Pid, kv.Value.State, ring.TokenCount(kv.Key), IsDown(kv.Key))).ToList();
        return new StatusReply(Config, Current.Epoch, Pending is not null, members);
    }

    public ManagerSnapshot Snapshot() =>
        new(Config, Current, Pending, Status().Members, _nextNodeId, _nextClientId);

    // ---- requests --------------------------------------------------------------------------

    private void OnJoin(long nowMs, long handle, JoinRequest m)
    {
        if (_members.Count >= Limits.NodesMax)
        {
            _out.Reply(handle, new ErrorReply($"the cluster already has {_members.Count} nodes (limit {Limits.NodesMax})"));
            return;
        }
        if (m.PreviousId.IsNode && _members.TryGetValue(m.PreviousId, out var known))
        {
            // A restart: same member, same tokens, its own data. It must hear the rings again.
            _members[m.PreviousId] = known with { Address = m.Address, Pid = m.Pid };
            _acked.Remove(m.PreviousId);
            _hintFloors.Remove(m.PreviousId);
            Seen(m.PreviousId);
            _out.Persist = Snapshot();
            _out.Reply(handle, new JoinReply(m.PreviousId, Config, Restarted: true));
            _out.Send(m.PreviousId, new RingUpdate(Config, Current, Pending));
            return;
        }
        if (_members.FirstOrDefault(kv => kv.Value.Address == m.Address && kv.Value.Pid == m.Pid) is { Value: not null } again)
        {
            // The same process asking again because our answer was lost: the same id, not a second member.
            _out.Reply(handle, new JoinReply(again.Key, Config, DiscardData: m.PreviousId.IsNode));
            return;
        }
        var id = new NodeId(_nextNodeId++);
        _members[id] = new Member(m.Address, m.Pid, MemberState.Joining);
        _out.Persist = Snapshot();
        // A node whose old identity was removed while it was away holds data the cluster has
        // re-replicated and maybe overwritten or deleted since: it starts empty, as a new node.
        _out.Reply(handle, new JoinReply(id, Config, DiscardData: m.PreviousId.IsNode));
        if (Pending is null)
            StartNextChange(nowMs);
    }

    private void OnClientInit(long handle)
    {
        var n = Config.ReplicationFactor;
        var up = Current.Members.Keys.Where(id => _members.TryGetValue(id, out var m) && m.State == MemberState.Up && !IsDown(id)).ToList();
        if (Current.NodeCount < n)
        {
            _out.Reply(handle, new ErrorReply(
                $"the cluster has {Current.NodeCount} of the {n} nodes that replication factor {n} needs; no request is accepted until enough nodes join"));
            return;
        }
        if (up.Count == 0)
        {
            _out.Reply(handle, new ErrorReply($"no node can serve as forwarder: all {Current.NodeCount} members are down or not yet up"));
            return;
        }
        var forwarder = up[_forwarderCursor++ % up.Count];
        var clientId = _nextClientId++;
        _out.Persist = Snapshot();
        _out.Reply(handle, new ClientInitReply(clientId, forwarder, Current.Members[forwarder], Config));
    }

    private void OnAdminLeave(long nowMs, long handle, NodeId node)
    {
        if (!_members.TryGetValue(node, out var member))
        {
            _out.Reply(handle, new ErrorReply($"{node} is not a member of the cluster"));
            return;
        }
        if (member.State == MemberState.Leaving)
        {
            // No waiters after a restart, or when the leave is the removal of a failed node.
            if (!_leaveWaiters.TryGetValue(node, out var waiters))
                _leaveWaiters[node] = waiters = [];
            waiters.Add(handle);
            return;
        }
        if (!Current.Contains(node))
        {
            _out.Reply(handle, new ErrorReply($"{node} is still joining; it can leave once it is up"));
            return;
        }
        var n = Config.ReplicationFactor;
        var remaining = _members.Count(kv => kv.Value.State != MemberState.Leaving) - 1;
        if (remaining < n)
        {
            _out.Reply(handle, new ErrorReply(
                $"{node} cannot leave: {remaining} nodes would remain and replication factor {n} needs {n}; add a node first or stop the cluster"));
            return;
        }
        _members[node] = member with { State = MemberState.Leaving };
        _leaveWaiters[node] = [handle];
        _out.Persist = Snapshot();
        if (Pending is null)
            StartNextChange(nowMs);
    }

    // ---- membership changes ----------------------------------------------------------------

    /// <summary>Nodes that must learn of the rings: members of either ring and nodes still joining.</summary>
    private IEnumerable<NodeId> Recipients() =>
        _members.Keys.Union(Current.Members.Keys).Union(Pending?.Members.Keys ?? []).Where(_members.ContainsKey);

    private void StartNextChange(long nowMs)
    {
        // Joins in id order first, then leaves: a join never needs a leave to finish.
        var join = _members.FirstOrDefault(kv => kv.Value.State == MemberState.Joining && !Current.Contains(kv.Key));
        var leave = _members.FirstOrDefault(kv => kv.Value.State == MemberState.Leaving && Current.Contains(kv.Key));
        Ring next;
        if (join.Value is not null)
            next = TokenAllocator.Join(Current, join.Key, join.Value.Address, Config.TokensPerNode, Current.Epoch + 1);
        else if (leave.Value is not null)
            next = TokenAllocator.Leave(Current, leave.Key, Current.Epoch + 1);
        else
            return;

        Pending = next;
        _planAttempt = 0;
        _plan = PlanFor(next);
        _doneTasks.Clear();
        _transfersStarted = false;
        _out.Persist = Snapshot();
        if (_plan.Count == 0)
        {
            Commit(nowMs);
            return;
        }
        _lastRetryMs = nowMs;
        foreach (var node in Recipients())
            _out.Send(node, new RingUpdate(Config, Current, Pending));
    }

    private List<TransferTask> PlanFor(Ring next)
    {
        var leaving = Current.Members.Keys.FirstOrDefault(id => !next.Contains(id), NodeId.None);
        var down = _members.Keys.Where(IsDown).ToHashSet();
        return TransferPlanner.Plan(Current, next, Config.ReplicationFactor, leaving, down);
    }

    private void OnRingAck(long nowMs, RingAck m)
    {
        _acked[m.From] = (m.Epoch, m.PendingEpoch);
        StartTransfersIfAllAcked(nowMs);
    }

    private void StartTransfersIfAllAcked(long nowMs)
    {
        if (Pending is null || _transfersStarted)
            return;
        // Transfers start only when every node routes writes to the pending replicas too;
        // otherwise a write could miss a range's new owner after its data was streamed.
        // Nodes that are down cannot answer; they learn the rings when they return.
        if (Recipients().Where(n => !IsDown(n)).All(n => _acked.GetValueOrDefault(n) == (Current.Epoch, Pending.Epoch)))
        {
            _transfersStarted = true;
            SendStartTransfers(onlyUnfinished: false);
            CommitIfTransferred(nowMs);
        }
    }

    private void SendStartTransfers(bool onlyUnfinished)
    {
        var bySource = _plan.Select((task, index) => (index, task))
            .Where(t => !onlyUnfinished || !_doneTasks.Contains(t.index))
            .GroupBy(t => t.task.Source);
        foreach (var group in bySource)
            _out.Send(group.Key, new StartTransfers(TransferId, group.ToList()));
    }

    private void CommitIfTransferred(long nowMs)
    {
        if (_transfersStarted && _doneTasks.Count >= _plan.Count)
            Commit(nowMs);
    }

    private void Commit(long nowMs)
    {
        var next = Pending!;
        var departed = Current.Members.Keys.Where(id => !next.Contains(id)).ToList();
        Current = next;
        Pending = null;
        _plan = [];
        _transfersStarted = false;
        foreach (var id in next.Members.Keys)
        {
            if (_members[id].State == MemberState.Joining)
                _members[id] = _members[id] with { State = MemberState.Up };
        }
        foreach (var id in Recipients())
            _out.Send(id, new RingUpdate(Config, Current, null));
        foreach (var id in departed)
        {
            _out.Send(id, new LeaveDone(id));
            if (_departed.Count >= Limits.NodesMax)
                _departed.Clear();
            _departed[id] = _members[id].Address;
            RememberDepartedFloor(id);
            _members.Remove(id);
            _acked.Remove(id);
            _lastSeenMs.Remove(id);
            foreach (var handle in _leaveWaiters.Remove(id, out var waiters) ? waiters : [])
                _out.Reply(handle, new OkReply());
        }
        _out.Persist = Snapshot();
        StartNextChange(nowMs);
    }
}
