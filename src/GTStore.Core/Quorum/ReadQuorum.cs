namespace GTStore.Core;

/// <summary>
/// Collects replica answers to a read: reached once R replicas answered and one of them holds a
/// version (a value or a tombstone), with the latest version among them. "Not found" counts
/// toward R only once every replica has answered or failed (Riak's notfound_ok = false): after a
/// sloppy write, replicas that were down hold nothing until their hints come back, and R of them
/// agreeing on "not found" must not hide the copy the others hold. Answers arriving after the
/// quorum still count for read repair.
/// </summary>
public sealed class ReadQuorum
{
    private readonly NodeId[] _replicas;
    private readonly int _required;
    private readonly Dictionary<NodeId, VersionedValue?> _answers = [];
    private readonly HashSet<NodeId> _failed = [];

    public ReadQuorum(NodeId[] replicas, int readQuorum)
    {
        _replicas = replicas;
        _required = Math.Min(readQuorum, replicas.Length);
    }

    public IReadOnlyList<NodeId> Replicas => _replicas;

    public bool HasAnswered(NodeId node) => _answers.ContainsKey(node) || _failed.Contains(node);

    public bool AllAnswered => _answers.Count + _failed.Count >= _replicas.Length;

    public QuorumState Answer(NodeId node, VersionedValue? value)
    {
        if (Array.IndexOf(_replicas, node) >= 0 && !_failed.Contains(node))
            _answers[node] = value;
        return State;
    }

    public QuorumState Fail(NodeId node)
    {
        if (Array.IndexOf(_replicas, node) >= 0 && !_answers.ContainsKey(node))
            _failed.Add(node);
        return State;
    }

    public QuorumState State =>
        _answers.Count >= _required && (AnyHeld() || AllAnswered) ? QuorumState.Reached
        : _replicas.Length - _failed.Count < _required ? QuorumState.Impossible
        : QuorumState.Waiting;

    private bool AnyHeld()
    {
        foreach (var v in _answers.Values)
        {
            if (v is not null)
                return true;
        }
        return false;
    }

    /// <summary>The latest version among the answers; null when no replica holds the key.</summary>
    public VersionedValue? Latest()
    {
        VersionedValue? best = null;
        foreach (var v in _answers.Values)
        {
            if (v is { } value && (best is null || value.Version > best.Value.Version))
                best = value;
        }
        return best;
    }

    /// <summary>Replicas that answered with an older version (or none) than the latest: read-repair targets.</summary>
    public IEnumerable<NodeId> Stale()
    {
        if (Latest() is not { } latest)
            yield break;
        foreach (var (node, v) in _answers)
        {
            if (v is null || v.Value.Version < latest.Version)
                yield return node;
        }
    }

    public string Describe() => $"{_answers.Count} of {_replicas.Length} replicas answered, read quorum {_required}";
}
