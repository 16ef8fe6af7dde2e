using System.Collections.Immutable;

namespace GTStore.Core;

/// <summary>
/// Chooses token positions so that primary ownership stays balanced (DESIGN.md: max/mean keys per
/// node &lt;= 1.10). Deterministic: the same ring and request give the same tokens, so the manager
/// needs no randomness.
/// </summary>
public static class TokenAllocator
{
    private static readonly UInt128 RingWidth = (UInt128)1 << 64;

    /// <summary>
    /// The ring after <paramref name="node"/> joins with <paramref name="tokenCount"/> new tokens.
    /// Each new token splits the largest range of the currently most loaded node, taking just the
    /// share that brings the newcomer to its fair part (total / nodes).
    /// </summary>
    public static Ring Join(Ring ring, NodeId node, string address, int tokenCount, long epoch)
    {
        if (ring.Contains(node))
            throw new InvalidOperationException($"{node} is already a member");
        if (tokenCount is < 1 or > Limits.TokensPerNodeMax)
            throw new ArgumentOutOfRangeException(nameof(tokenCount), $"tokens per node must be 1..{Limits.TokensPerNodeMax}, got {tokenCount}");

        var members = ring.Members.Add(node, address);
        if (ring.Tokens.IsEmpty)
        {
            var step = ulong.MaxValue / (ulong)tokenCount;
            var first = Enumerable.Range(0, tokenCount).Select(i => new Token(SlotEnd(step / 2 + step * (ulong)i), node));
            return ring.With(epoch, first, members);
        }

        var tokens = ring.Tokens.ToList();
        var load = Loads(tokens);
        var fair = RingWidth / (UInt128)members.Count;
        UInt128 taken = 0;
        for (var i = 0; i < tokenCount; i++)
        {
            var share = (fair - taken) / (UInt128)(tokenCount - i);
            if (share == 0)
                break;
            var donor = load.Where(kv => kv.Key != node).MaxBy(kv => (kv.Value, -kv.Key.Value)).Key;
            var arcIndex = LargestArcOf(tokens, donor);
            var arcStart = tokens[arcIndex == 0 ? tokens.Count - 1 : arcIndex - 1].Position;
            var arcWidth = Width(tokens, arcIndex);
            var excess = load[donor] > fair ? load[donor] - fair : 0;
            var amount = Min(share, Min(arcWidth - 1, excess == 0 ? arcWidth / 2 : excess));
            if (amount == 0)
                break;
            var position = SnapToSlotEnd(unchecked(arcStart + (ulong)amount), arcStart, arcWidth, tokens);
            amount = unchecked(position - arcStart);
            tokens.Insert(arcIndex, new Token(position, node));
            tokens = [.. tokens.OrderBy(t => t.Position)];
            load[donor] -= amount;
            load[node] = load.GetValueOrDefault(node) + amount;
            taken += amount;
        }
        return ring.With(epoch, Smooth(tokens), members);
    }

    /// <summary>DESIGN.md's goal for primary ownership max/mean; above it, the ring is smoothed.</summary>
    public const double BalanceGoal = 1.10;

    /// <summary>Primary ownership max/mean that smoothing aims for, with margin below the goal.</summary>
    public const double BalanceTarget = 1.05;

    /// <summary>Most passes of <see cref="Smooth"/> over the ring.</summary>
    public const int SmoothPassesMax = 200;

    /// <summary>
    /// With few tokens per node, new tokens alone cannot relieve every overloaded node (V new tokens
    /// take from at most V donors), so a join or leave can leave max/mean above the 1.10 goal. Only
    /// then, smoothing moves boundaries between neighbouring tokens of different owners, halving
    /// the two owners' load difference each time, until max/mean reaches <see cref="BalanceTarget"/>.
    /// Every node keeps its tokens and only positions shift, so the extra data moved is about the
    /// imbalance removed; within the goal, existing tokens stay where they are (Dynamo 4.2).
    /// </summary>
    private static List<Token> Smooth(List<Token> tokens)
    {
        if (tokens.Count < 2)
            return tokens;
        tokens = [.. tokens.OrderBy(t => t.Position)];
        var load = Loads(tokens);
        var mean = (double)RingWidth / load.Count;
        if ((double)load.Values.Max() / mean <= BalanceGoal)
            return tokens;
        for (var pass = 0; pass < SmoothPassesMax && (double)load.Values.Max() / mean > BalanceTarget; pass++)
        {
            for (var i = 0; i < tokens.Count; i++)
            {
                var j = (i + 1) % tokens.Count;
                var (here, next) = (tokens[i], tokens[j]);
                if (here.Owner == next.Owner)
                    continue;
                var start = tokens[i == 0 ? tokens.Count - 1 : i - 1].Position;
                var arc = (Int128)Width(tokens, i);
                var both = arc + (Int128)Width(tokens, j);
                var delta = ((Int128)load[here.Owner] - (Int128)load[next.Owner]) / 2;
                var wanted = Int128.Clamp(arc - delta, 1, both - 1);
                if (wanted == arc)
                    continue;
                var position = SnapToSlotEnd(unchecked(start + (ulong)(UInt128)wanted), start, (UInt128)both, tokens, here.Position);
                // Keep positions unique: never land on another token.
                if (position != here.Position && tokens.Any(t => t.Position == position))
                    continue;
                wanted = (Int128)(UInt128)unchecked(position - start);
                if (wanted == arc)
                    continue;
                tokens[i] = here with { Position = position };
                load[here.Owner] = (UInt128)((Int128)load[here.Owner] + wanted - arc);
                load[next.Owner] = (UInt128)((Int128)load[next.Owner] - (wanted - arc));
            }
            tokens = [.. tokens.OrderBy(t => t.Position)];
        }
        return tokens;
    }

    /// <summary>
    /// The ring after <paramref name="node"/> leaves. Its tokens keep their positions and pass,
    /// largest range first, to whichever remaining node then owns least, so no range is merged
    /// into a neighbour that is already large.
    /// </summary>
    public static Ring Leave(Ring ring, NodeId node, long epoch)
    {
        if (!ring.Contains(node))
            throw new InvalidOperationException($"{node} is not a member");
        var members = ring.Members.Remove(node);
        if (members.IsEmpty)
            return ring.With(epoch, [], members);

        var tokens = ring.Tokens.ToArray();
        var load = Loads(tokens.Where(t => t.Owner != node).ToList());
        foreach (var m in members.Keys)
            load.TryAdd(m, 0);
        var orphaned = Enumerable.Range(0, tokens.Length)
            .Where(i => tokens[i].Owner == node)
            .OrderByDescending(i => Width(tokens, i))
            .ThenBy(i => tokens[i].Position)
            .ToList();
        foreach (var i in orphaned)
        {
            var heir = load.MinBy(kv => (kv.Value, kv.Key.Value)).Key;
            tokens[i] = tokens[i] with { Owner = heir };
            load[heir] += Width(tokens, i);
        }
        return ring.With(epoch, Smooth([.. tokens]), members);
    }

    private static Dictionary<NodeId, UInt128> Loads(IReadOnlyList<Token> tokens)
    {
        var load = new Dictionary<NodeId, UInt128>();
        for (var i = 0; i < tokens.Count; i++)
            load[tokens[i].Owner] = load.GetValueOrDefault(tokens[i].Owner) + Width(tokens, i);
        return load;
    }

    private static UInt128 Width(IReadOnlyList<Token> tokens, int index)
    {
        if (tokens.Count == 1)
            return RingWidth;
        var prev = tokens[index == 0 ? tokens.Count - 1 : index - 1].Position;
        return unchecked(tokens[index].Position - prev);
    }

    private static int LargestArcOf(IReadOnlyList<Token> tokens, NodeId owner)
    {
        var best = -1;
        UInt128 bestWidth = 0;
        for (var i = 0; i < tokens.Count; i++)
        {
            if (tokens[i].Owner != owner)
                continue;
            var w = Width(tokens, i);
            if (best < 0 || w > bestWidth)
            {
                best = i;
                bestWidth = w;
            }
        }
        return best;
    }

    private static UInt128 Min(UInt128 a, UInt128 b) => a < b ? a : b;

    private static readonly UInt128 SlotWidth = (UInt128)1 << KeyHash.SlotShift;

    /// <summary>The last position of the slot arc whose end is nearest <paramref name="position"/>.</summary>
    private static ulong SlotEnd(ulong position) =>
        unchecked((ulong)(((UInt128)position + 1 + SlotWidth / 2) / SlotWidth * SlotWidth) - 1);

    /// <summary>
    /// <paramref name="position"/> moved to the nearest end of a slot's arc that lies inside the arc
    /// (<paramref name="arcStart"/>, +<paramref name="arcWidth"/>) and holds no other token than
    /// <paramref name="moving"/>, so that every slot stays within one range and CLUSTER SLOTS is
    /// exact (<see cref="KeyHash"/>); unchanged when there is no such end, as when a ring has more
    /// tokens than there are slots.
    /// </summary>
    private static ulong SnapToSlotEnd(ulong position, ulong arcStart, UInt128 arcWidth, IReadOnlyList<Token> tokens, ulong? moving = null)
    {
        var below = unchecked((ulong)(((UInt128)position + 1) / SlotWidth * SlotWidth) - 1);
        var above = unchecked(below + (ulong)SlotWidth);
        var (near, far) = unchecked(position - below) <= unchecked(above - position) ? (below, above) : (above, below);
        foreach (var end in (ReadOnlySpan<ulong>)[near, far])
        {
            var offset = (UInt128)unchecked(end - arcStart);
            if (offset > 0 && offset < arcWidth && (end == moving || !tokens.Any(t => t.Position == end)))
                return end;
        }
        return position;
    }
}
