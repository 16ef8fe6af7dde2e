using System.Collections.Immutable;

namespace GTStore.Core.Tests;

/// <summary>Helpers to build rings by hand.</summary>
internal static class TestRings
{
    public static NodeId N(int id) => new(id);

    /// <summary>A ring from (position, owner id) pairs, in the given order; members are the owners plus <paramref name="extraMembers"/>.</summary>
    public static Ring Build(long epoch, (ulong Position, int Owner)[] tokens, params int[] extraMembers)
    {
        var members = tokens.Select(t => t.Owner).Concat(extraMembers).Distinct()
            .ToImmutableSortedDictionary(id => new NodeId(id), id => $"sim://{id}");
        return new Ring(epoch, [.. tokens.Select(t => new Token(t.Position, new NodeId(t.Owner)))], members);
    }

    /// <summary>A ring grown by <see cref="TokenAllocator.Join"/> with nodes 1..<paramref name="nodes"/>.</summary>
    public static Ring Grown(int nodes, int tokensPerNode)
    {
        var ring = Ring.Empty;
        for (var i = 1; i <= nodes; i++)
            ring = TokenAllocator.Join(ring, new NodeId(i), $"sim://{i}", tokensPerNode, ring.Epoch + 1);
        return ring;
    }

    /// <summary>The preference list the design defines, computed by the slowest obvious walk: DESIGN.md Words.</summary>
    public static NodeId[] ReferencePreferenceList(Ring ring, ulong hash, int n)
    {
        var list = new List<NodeId>();
        var sorted = ring.Tokens.OrderBy(t => t.Position).ToList();
        var start = sorted.FindIndex(t => t.Position >= hash);
        if (start < 0)
            start = 0;
        for (var k = 0; k < sorted.Count && list.Count < n; k++)
        {
            var owner = sorted[(start + k) % sorted.Count].Owner;
            if (!list.Contains(owner))
                list.Add(owner);
        }
        return [.. list];
    }
}
