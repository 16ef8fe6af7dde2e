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
    private enum Reply : byte { None, Held, Failed }

    private readonly NodeId[] _replicas;
    private readonly int _required;

    // One answer per replica, found by a scan (a read has N replicas): a dictionary and a set per
    // read were most of what a read allocated in its quorum. A replica's later answer replaces
    // its earlier one (a version-only answer, then the whole copy); a failure is kept only by a
    // replica that never answered.
    private readonly Reply[] _state;
    private readonly VersionedValue?[] _values;
    private int _answered;
    private int _failed;

    public ReadQuorum(NodeId[] replicas, int readQuorum)
    {
        _replicas = replicas;
        _required = Math.Min(readQuorum, replicas.Length);
        _state = new Reply[replicas.Length];
        _values = new VersionedValue?[replicas.Length];
    }

    public IReadOnlyList<NodeId> Replicas => _replicas;

    /// <summary>Answers needed: R, or every replica when there are fewer than R.</summary>
    public int Required => _required;

    public bool HasAnswered(NodeId node)
    {
        var i = Array.IndexOf(_replicas, node);
        return i >= 0 && _state[i] != Reply.None;
    }

    public bool AllAnswered => _answered + _failed >= _replicas.Length;

    public QuorumState Answer(NodeId node, VersionedValue? value)
    {
        var i = Array.IndexOf(_replicas, node);
        if (i >= 0 && _state[i] != Reply.Failed)
        {
            if (_state[i] == Reply.None)
                _answered++;
            _state[i] = Reply.Held;
            _values[i] = value;
        }
        return State;
    }

    public QuorumState Fail(NodeId node)
    {
        var i = Array.IndexOf(_replicas, node);
        if (i >= 0 && _state[i] == Reply.None)
        {
            _state[i] = Reply.Failed;
            _failed++;
        }
        return State;
    }

    public QuorumState State =>
        _answered >= _required && (AnyHeld() || AllAnswered) ? QuorumState.Reached
        : _replicas.Length - _failed < _required ? QuorumState.Impossible
        : QuorumState.Waiting;

    private bool AnyHeld()
    {
        for (var i = 0; i < _values.Length; i++)
        {
            if (_values[i] is not null) // Only an answer sets a value.
                return true;
        }
        return false;
    }

    /// <summary>The latest version among the answers; null when no replica holds the key.</summary>
    public VersionedValue? Latest()
    {
        VersionedValue? best = null;
        for (var i = 0; i < _values.Length; i++)
        {
            if (_values[i] is { } value && (best is null || value.Version > best.Value.Version))
                best = value;
        }
        return best;
    }

    /// <summary>Replicas that answered with an older version (or none) than the latest: read-repair targets, in replica order.</summary>
    public NodeId[] Stale()
    {
        if (Latest() is not { } latest)
            return [];
        var stale = 0;
        for (var i = 0; i < _values.Length; i++)
        {
            if (IsStale(i, latest))
                stale++;
        }
        if (stale == 0)
            return [];
        var nodes = new NodeId[stale];
        var n = 0;
        for (var i = 0; i < _values.Length; i++)
        {
            if (IsStale(i, latest))
                nodes[n++] = _replicas[i];
        }
        return nodes;
    }

    private bool IsStale(int i, VersionedValue latest) =>
        _state[i] == Reply.Held && (_values[i] is not { } v || v.Version < latest.Version);

    public string Describe() => $"{_answered} of {_replicas.Length} replicas answered, read quorum {_required}";
}
