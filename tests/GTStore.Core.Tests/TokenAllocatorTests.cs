using System.Globalization;
using System.Text;
using static GTStore.Core.Tests.TestRings;

namespace GTStore.Core.Tests;

/// <summary>
/// DESIGN.md Membership: "the manager gives it tokens chosen to keep ownership balanced (goal:
/// max/mean keys per node &lt;= 1.10)". Seed, Load balancing: "More virtual nodes could guarantee
/// keys are balanced among storage nodes".
/// </summary>
public sealed class TokenAllocatorTests
{
    private const double Goal = 1.10;

    /// <summary>max/mean primary ownership after each of 1..20 joins, and the worst of them.</summary>
    private static (double Worst, string Table) JoinBalance(int tokensPerNode)
    {
        var ring = Ring.Empty;
        var worst = 0.0;
        var table = new StringBuilder();
        for (var n = 1; n <= 20; n++)
        {
            ring = TokenAllocator.Join(ring, N(n), $"sim://{n}", tokensPerNode, n);
            var shares = ring.PrimaryOwnership().Values.ToList();
            var ratio = shares.Max() / shares.Average();
            worst = Math.Max(worst, ratio);
            table.Append(CultureInfo.InvariantCulture, $"n={n}: {ratio:F4}; ");
        }
        return (worst, table.ToString());
    }

    [Fact]
    public void Primary_ownership_max_over_mean_stays_within_the_1_10_goal_with_8_tokens_per_node()
    {
        var (worst, table) = JoinBalance(8);
        // Measured: worst 1.1000 exactly at n=11 (1e-9 allows for the double arithmetic).
        Assert.True(worst <= Goal + 1e-9, $"V=8: worst max/mean {worst:F4} > {Goal}; {table}");
    }

    [Fact]
    public void Primary_ownership_max_over_mean_stays_within_the_1_10_goal_with_the_default_3_tokens()
    {
        // DESIGN.md Join, goal max/mean <= 1.10. A joiner's 3 tokens alone can take load from at most
        // 3 donors (1.2179 at n=11 before smoothing); smoothing the boundaries brings every n back.
        var (worst, table) = JoinBalance(3);
        Assert.True(worst <= Goal + 1e-9, $"V=3: worst max/mean {worst:F4} > {Goal}; {table}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void Join_gives_the_new_node_its_tokens_and_every_existing_node_keeps_its_own(int tokensPerNode)
    {
        var ring = Grown(6, tokensPerNode);
        var next = TokenAllocator.Join(ring, N(7), "sim://7", tokensPerNode, ring.Epoch + 1);
        Assert.Equal(ring.Epoch + 1, next.Epoch);
        Assert.Equal("sim://7", next.AddressOf(N(7)));
        Assert.Equal(tokensPerNode, next.TokenCount(N(7)));
        // DESIGN.md Join: tokens "chosen to keep ownership balanced (goal: max/mean <= 1.10)". Old
        // tokens keep their owners; positions shift only when smoothing is needed for the goal.
        foreach (var member in ring.Members.Keys)
            Assert.Equal(ring.TokenCount(member), next.TokenCount(member));
        Assert.True(next.PrimaryOwnership().Values.Max() * next.NodeCount <= TokenAllocator.BalanceGoal + 1e-9);
    }

    [Fact]
    public void Join_leaves_existing_tokens_in_place_when_the_ring_stays_within_the_balance_goal()
    {
        // Dynamo 4.2: "the arrival ... of a node only affects its immediate neighbors". With 8
        // tokens per node the new tokens alone keep the ring within 1.10 from 4 to 5 nodes.
        var ring = Grown(4, 8);
        var next = TokenAllocator.Join(ring, N(5), "sim://5", 8, ring.Epoch + 1);
        Assert.Subset(next.Tokens.ToHashSet(), ring.Tokens.ToHashSet());
    }

    [Fact]
    public void First_node_gets_evenly_spaced_tokens_covering_the_ring()
    {
        var ring = TokenAllocator.Join(Ring.Empty, N(1), "sim://1", 4, 1);
        Assert.Equal(4, ring.TokenCount(N(1)));
        Assert.Equal(1.0, ring.PrimaryOwnership()[N(1)], 12);
        var widths = Enumerable.Range(0, 4).Select(i => ring.RangeAt(i).Width).ToList();
        Assert.True(widths.Max() - widths.Min() <= 4, "first node's ranges should be equal to within rounding");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void Tokens_sit_at_the_ends_of_slot_arcs_through_joins_and_leaves(int tokensPerNode)
    {
        // KeyHash: a slot's arc must lie within one range for CLUSTER SLOTS to be exact.
        const ulong slotMask = (1UL << KeyHash.SlotShift) - 1;
        var ring = Ring.Empty;
        for (var n = 1; n <= 20; n++)
        {
            ring = TokenAllocator.Join(ring, N(n), $"sim://{n}", tokensPerNode, n);
            Assert.All(ring.Tokens, t => Assert.Equal(slotMask, t.Position & slotMask));
        }
        foreach (var n in new[] { 4, 11, 1, 19, 7 })
        {
            ring = TokenAllocator.Leave(ring, N(n), ring.Epoch + 1);
            Assert.All(ring.Tokens, t => Assert.Equal(slotMask, t.Position & slotMask));
        }
    }

    [Fact]
    public void Join_rejects_a_node_that_is_already_a_member()
    {
        var ring = Grown(2, 3);
        Assert.Throws<InvalidOperationException>(() => TokenAllocator.Join(ring, N(2), "x", 3, 9));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(Limits.TokensPerNodeMax + 1)]
    public void Join_rejects_a_token_count_outside_1_to_the_limit(int tokens)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => TokenAllocator.Join(Ring.Empty, N(1), "x", tokens, 1));
        Assert.Contains($"1..{Limits.TokensPerNodeMax}", ex.Message);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(8)]
    public void Leave_hands_the_leaving_nodes_tokens_to_the_others(int tokensPerNode)
    {
        var ring = Grown(6, tokensPerNode);
        var next = TokenAllocator.Leave(ring, N(3), ring.Epoch + 1);
        Assert.Equal(ring.Epoch + 1, next.Epoch);
        Assert.False(next.Contains(N(3)));
        Assert.Equal(0, next.TokenCount(N(3)));
        Assert.Equal(5, next.NodeCount);
        // DESIGN.md Membership, Leave: the leaving node's tokens pass to the others; every remaining
        // node keeps its own (positions shift only if smoothing is needed for the 1.10 goal).
        Assert.Equal(ring.Tokens.Length, next.Tokens.Length);
        foreach (var member in next.Members.Keys)
            Assert.True(next.TokenCount(member) >= ring.TokenCount(member));
        Assert.True(next.PrimaryOwnership().Values.Max() * next.NodeCount <= TokenAllocator.BalanceGoal + 1e-9);
    }

    [Fact]
    public void Leave_of_the_last_node_leaves_an_empty_ring()
    {
        var ring = TokenAllocator.Leave(Grown(1, 3), N(1), 2);
        Assert.Equal(0, ring.NodeCount);
        Assert.Empty(ring.Tokens);
    }

    [Fact]
    public void Leave_rejects_a_node_that_is_not_a_member()
    {
        Assert.Throws<InvalidOperationException>(() => TokenAllocator.Leave(Grown(3, 3), N(4), 5));
    }

    [Fact]
    public void Allocation_is_deterministic_so_the_manager_needs_no_randomness()
    {
        // TokenAllocator: "Deterministic: the same ring and request give the same tokens".
        static Ring Run()
        {
            var ring = Grown(9, 3);
            ring = TokenAllocator.Leave(ring, N(4), ring.Epoch + 1);
            ring = TokenAllocator.Join(ring, N(10), "sim://10", 3, ring.Epoch + 1);
            return TokenAllocator.Leave(ring, N(1), ring.Epoch + 1);
        }
        var a = Run();
        var b = Run();
        Assert.Equal(a.Tokens.ToArray(), b.Tokens.ToArray());
        Assert.Equal(a.Members.ToArray(), b.Members.ToArray());
        Assert.Equal(a.Epoch, b.Epoch);
    }
}
