namespace GTStore.Core;

public enum QuorumState { Waiting, Reached, Impossible }

/// <summary>
/// Counts write acknowledgements. While a membership change is pending, a write must reach W
/// replicas of the current ring and W replicas of the pending ring (as Cassandra does for pending
/// ranges), so that whichever ring is committed already holds it.
/// </summary>
public sealed class WriteQuorum
{
    private readonly NodeId[] _current;
    private readonly NodeId[]? _pending;
    private readonly NodeId[] _targets;
    private readonly int _required;
    private readonly HashSet<NodeId> _acked = [];
    private readonly HashSet<NodeId> _failed = [];

    public WriteQuorum(NodeId[] current, NodeId[]? pending, int writeQuorum)
    {
        _current = current;
        _pending = pending;
        _required = writeQuorum;
        _targets = pending is null ? current : [.. current.Union(pending)];
    }

    /// <summary>Every node the write goes to: replicas of both rings, each once (shared: not to be modified).</summary>
    public IReadOnlyList<NodeId> Targets => _targets;

    public int AckCount => _acked.Count;

    public bool HasAnswered(NodeId node) => _acked.Contains(node) || _failed.Contains(node);

    public int TargetCount => _targets.Length;

    public QuorumState Ack(NodeId node)
    {
        if (!_failed.Contains(node))
            _acked.Add(node);
        return State;
    }

    public QuorumState Fail(NodeId node)
    {
        if (!_acked.Contains(node))
            _failed.Add(node);
        return State;
    }

    public QuorumState State
    {
        get
        {
            var a = Evaluate(_current);
            var b = _pending is null ? QuorumState.Reached : Evaluate(_pending);
            if (a == QuorumState.Impossible || b == QuorumState.Impossible)
                return QuorumState.Impossible;
            return a == QuorumState.Reached && b == QuorumState.Reached ? QuorumState.Reached : QuorumState.Waiting;
        }
    }

    private QuorumState Evaluate(NodeId[] replicas)
    {
        // With fewer replicas than W (a cluster below N nodes), every replica must answer.
        var need = Math.Min(_required, replicas.Length);
        int acks = 0, failed = 0;
        foreach (var r in replicas)
        {
            if (_acked.Contains(r))
                acks++;
            else if (_failed.Contains(r))
                failed++;
        }
        if (acks >= need)
            return QuorumState.Reached;
        return replicas.Length - failed < need ? QuorumState.Impossible : QuorumState.Waiting;
    }

    /// <summary>The acknowledgements per ring, so a shortfall in either ring shows.</summary>
    public string Describe()
    {
        var current = $"{_current.Count(_acked.Contains)} of {_current.Length} replicas acknowledged, write quorum {_required}";
        return _pending is null
            ? current
            : $"{current}; during the ring change also {_pending.Count(_acked.Contains)} of {_pending.Length} replicas of the pending ring";
    }
}
