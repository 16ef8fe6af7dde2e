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
    public void Primary_ownership_max_over_mean_with_the_default_3_tokens_stays_within_1_22_short_of_the_1_10_goal()
    {
        // NOT the design goal. With V=3 (the seed's default) the allocator measures 1.1667 at n=3,
        // 1.2000 at n=6, 1.2179 at n=11, 1.2143 at n=17: a joiner's V tokens can take load from at
        // most V donors, so the other nodes keep their excess. This asserts what the code meets so
        // that a regression shows; the gap to 1.10 is reported to the lead.
        var (worst, table) = JoinBalance(3);
        Assert.True(worst <= 1.22, $"V=3: worst max/mean {worst:F4} > 1.22; {table}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void Join_gives_the_new_node_its_tokens_and_leaves_every_existing_token_in_place(int tokensPerNode)
    {
        var ring = Grown(6, tokensPerNode);
        var next = TokenAllocator.Join(ring, N(7), "sim://7", tokensPerNode, ring.Epoch + 1);
        Assert.Equal(ring.Epoch + 1, next.Epoch);
        Assert.Equal("sim://7", next.AddressOf(N(7)));
        Assert.Equal(tokensPerNode, next.TokenCount(N(7)));
        // Dynamo 4.2: "the arrival ... of a node only affects its immediate neighbors": old tokens stay.
        Assert.Subset(next.Tokens.ToHashSet(), ring.Tokens.ToHashSet());
        Assert.Equal(ring.Tokens.Length + tokensPerNode, next.Tokens.Length);
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
    public void Leave_hands_the_leaving_nodes_tokens_to_others_at_the_same_positions(int tokensPerNode)
    {
        var ring = Grown(6, tokensPerNode);
        var next = TokenAllocator.Leave(ring, N(3), ring.Epoch + 1);
        Assert.Equal(ring.Epoch + 1, next.Epoch);
        Assert.False(next.Contains(N(3)));
        Assert.Equal(0, next.TokenCount(N(3)));
        Assert.Equal(5, next.NodeCount);
        // DESIGN.md Membership, Leave: "the leaving node streams its partitions to the new owners":
        // positions stay, so only the leaving node's ranges change hands.
        Assert.Equal(ring.Tokens.Select(t => t.Position), next.Tokens.Select(t => t.Position));
        for (var i = 0; i < ring.Tokens.Length; i++)
        {
            if (ring.Tokens[i].Owner != N(3))
                Assert.Equal(ring.Tokens[i].Owner, next.Tokens[i].Owner);
            else
                Assert.True(next.Contains(next.Tokens[i].Owner));
        }
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
