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

    private enum Answer : byte { None, Acked, Failed }

    // One answer per target, found by a scan: a write has at most 2N targets, and a set per write
    // (two, with their arrays) was most of what a write allocated in its quorum.
    private readonly Answer[] _answers;
    private Dictionary<NodeId, Answer>? _others; // Answers from nodes that are not targets (none expected).

    public WriteQuorum(NodeId[] current, NodeId[]? pending, int writeQuorum)
    {
        _current = current;
        _pending = pending;
        _required = writeQuorum;
        _targets = pending is null ? current : [.. current.Union(pending)];
        _answers = new Answer[_targets.Length];
    }

    private Answer AnswerOf(NodeId node)
    {
        var i = Array.IndexOf(_targets, node);
        return i >= 0 ? _answers[i] : _others?.GetValueOrDefault(node) ?? Answer.None;
    }

    /// <summary>Records the first answer of <paramref name="node"/>: an ack never turns into a failure, nor a failure into an ack.</summary>
    private void Record(NodeId node, Answer answer)
    {
        var i = Array.IndexOf(_targets, node);
        if (i >= 0)
        {
            if (_answers[i] == Answer.None)
                _answers[i] = answer;
        }
        else
        {
            (_others ??= []).TryAdd(node, answer);
        }
    }

    private bool IsAcked(NodeId node) => AnswerOf(node) == Answer.Acked;

    /// <summary>Every node the write goes to: replicas of both rings, each once (shared: not to be modified).</summary>
    public IReadOnlyList<NodeId> Targets => _targets;

    public int AckCount => _answers.Count(a => a == Answer.Acked) + (_others?.Values.Count(a => a == Answer.Acked) ?? 0);

    public bool HasAnswered(NodeId node) => AnswerOf(node) != Answer.None;

    public int TargetCount => _targets.Length;

    public QuorumState Ack(NodeId node)
    {
        Record(node, Answer.Acked);
        return State;
    }

    public QuorumState Fail(NodeId node)
    {
        Record(node, Answer.Failed);
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
            var answer = AnswerOf(r);
            if (answer == Answer.Acked)
                acks++;
            else if (answer == Answer.Failed)
                failed++;
        }
        if (acks >= need)
            return QuorumState.Reached;
        return replicas.Length - failed < need ? QuorumState.Impossible : QuorumState.Waiting;
    }

    /// <summary>The acknowledgements per ring, so a shortfall in either ring shows.</summary>
    public string Describe()
    {
        var current = $"{_current.Count(IsAcked)} of {_current.Length} replicas acknowledged, write quorum {_required}";
        return _pending is null
            ? current
            : $"{current}; during the ring change also {_pending.Count(IsAcked)} of {_pending.Length} replicas of the pending ring";
    }
}
