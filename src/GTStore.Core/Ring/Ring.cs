using System.Collections.Immutable;

namespace GTStore.Core;

/// <summary>
/// An immutable consistent-hashing ring at one epoch: tokens sorted by position, and the address
/// of every member node. Keys in (previous token, token] belong to that token's range; a key's
/// preference list is the first N distinct owners met walking clockwise from its hash.
/// </summary>
public sealed class Ring
{
    public static readonly Ring Empty = new(0, ImmutableArray<Token>.Empty, ImmutableSortedDictionary<NodeId, string>.Empty);

    public Ring(long epoch, ImmutableArray<Token> tokens, ImmutableSortedDictionary<NodeId, string> members)
    {
        for (var i = 1; i < tokens.Length; i++)
        {
            if (tokens[i - 1].Position >= tokens[i].Position)
                throw new ArgumentException("ring tokens must be sorted by position with no duplicates", nameof(tokens));
        }
        foreach (var t in tokens)
        {
            if (!members.ContainsKey(t.Owner))
                throw new ArgumentException($"token {t.Position:x16} is owned by {t.Owner}, which is not a member", nameof(tokens));
        }
        Epoch = epoch;
        Tokens = tokens;
        Members = members;
    }

    public long Epoch { get; }

    public ImmutableArray<Token> Tokens { get; }

    /// <summary>Member nodes and their addresses, ordered by id.</summary>
    public ImmutableSortedDictionary<NodeId, string> Members { get; }

    public int NodeCount => Members.Count;

    public bool Contains(NodeId node) => Members.ContainsKey(node);

    public string? AddressOf(NodeId node) => Members.TryGetValue(node, out var a) ? a : null;

    public int TokenCount(NodeId node)
    {
        var n = 0;
        foreach (var t in Tokens)
        {
            if (t.Owner == node)
                n++;
        }
        return n;
    }

    /// <summary>Index of the first token at or after <paramref name="hash"/>, wrapping to 0.</summary>
    public int SuccessorIndex(ulong hash)
    {
        if (Tokens.IsEmpty)
            throw new InvalidOperationException("the ring has no tokens");
        int lo = 0, hi = Tokens.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (Tokens[mid].Position < hash)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo == Tokens.Length ? 0 : lo;
    }

    /// <summary>The range (partition) a hash falls in.</summary>
    public HashRange RangeOf(ulong hash) => RangeAt(SuccessorIndex(hash));

    /// <summary>The range ending at token <paramref name="index"/>.</summary>
    public HashRange RangeAt(int index)
    {
        var prev = index == 0 ? Tokens[^1] : Tokens[index - 1];
        return new HashRange(prev.Position, Tokens[index].Position);
    }

    /// <summary>
    /// The first <paramref name="count"/> distinct nodes walking clockwise from <paramref name="hash"/>;
    /// shared, not to be modified (<see cref="PreferenceListFrom"/>).
    /// </summary>
    public NodeId[] PreferenceList(ulong hash, int count) =>
        Tokens.IsEmpty ? [] : PreferenceListFrom(SuccessorIndex(hash), count);

    /// <summary>Lists of at most this many nodes are computed once per ring and shared.</summary>
    private const int CachedListLengthMax = 8;

    /// <summary>Per list length asked for, the preference list of every range (copy on write: few lengths are ever asked).</summary>
    private volatile (int Count, NodeId[][] Lists)[] _cachedLists = [];

    /// <summary>
    /// Preference list of the range ending at token <paramref name="index"/>. Lists of up to
    /// <see cref="CachedListLengthMax"/> nodes are computed once per ring and shared by every
    /// caller, so the request path allocates none: callers must not modify them.
    /// </summary>
    public NodeId[] PreferenceListFrom(int index, int count)
    {
        if (count > CachedListLengthMax)
            return ComputePreferenceList(index, count);
        var cached = _cachedLists;
        foreach (var (c, lists) in cached)
        {
            if (c == count)
                return lists[index];
        }
        var all = new NodeId[Tokens.Length][];
        for (var i = 0; i < all.Length; i++)
            all[i] = ComputePreferenceList(i, count);
        _cachedLists = [.. cached, (count, all)]; // A race adds a duplicate entry, which is harmless.
        return all[index];
    }

    private NodeId[] ComputePreferenceList(int index, int count)
    {
        var want = Math.Min(count, NodeCount);
        var result = new NodeId[want];
        var found = 0;
        // A walk meets every token at most once; bounded by the token count.
        for (var step = 0; step < Tokens.Length && found < want; step++)
        {
            var owner = Tokens[(index + step) % Tokens.Length].Owner;
            if (Array.IndexOf(result, owner, 0, found) < 0)
                result[found++] = owner;
        }
        // A member may own no token (yet): the list then holds only the owners met.
        return found == want ? result : result[..found];
    }

    public bool IsReplica(NodeId node, ulong hash, int replicationFactor) =>
        Array.IndexOf(PreferenceList(hash, replicationFactor), node) >= 0;

    /// <summary>Every range of the ring with its preference list.</summary>
    public IEnumerable<(HashRange Range, NodeId[] Replicas)> Partitions(int replicationFactor)
    {
        for (var i = 0; i < Tokens.Length; i++)
            yield return (RangeAt(i), PreferenceListFrom(i, replicationFactor));
    }

    /// <summary>
    /// The replicas of each Redis Cluster slot, as runs of consecutive slots with the same
    /// preference list. A slot whose arc a token cuts is given the replicas of its midpoint: keys
    /// in the rest of its arc belong to the neighbouring range, and a node asked for them forwards.
    /// </summary>
    public IReadOnlyList<SlotRange> SlotRanges(int replicationFactor)
    {
        var runs = new List<SlotRange>();
        if (Tokens.IsEmpty)
            return runs;
        var first = 0;
        var replicas = PreferenceList(KeyHash.SlotMidpoint(0), replicationFactor);
        for (var slot = 1; slot <= KeySlot.Count; slot++)
        {
            var next = slot < KeySlot.Count ? PreferenceList(KeyHash.SlotMidpoint(slot), replicationFactor) : null;
            if (next is not null && next.AsSpan().SequenceEqual(replicas))
                continue;
            runs.Add(new SlotRange(first, slot - 1, replicas));
            (first, replicas) = (slot, next!);
        }
        return runs;
    }

    /// <summary>Share of the ring (0..1) whose first replica is each node.</summary>
    public IReadOnlyDictionary<NodeId, double> PrimaryOwnership()
    {
        var shares = Members.Keys.ToDictionary(n => n, _ => 0.0);
        for (var i = 0; i < Tokens.Length; i++)
            shares[Tokens[i].Owner] += (double)RangeAt(i).Width / Math.Pow(2, 64);
        return shares;
    }

    public Ring With(long epoch, IEnumerable<Token> tokens, ImmutableSortedDictionary<NodeId, string> members) =>
        new(epoch, [.. tokens.OrderBy(t => t.Position)], members);

    public override string ToString() => $"ring epoch {Epoch}: {NodeCount} nodes, {Tokens.Length} tokens";
}

/// <summary>Slots <see cref="First"/>..<see cref="Last"/> (inclusive) and their replicas, first replica first.</summary>
public sealed record SlotRange(int First, int Last, NodeId[] Replicas);
