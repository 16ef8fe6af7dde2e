using System.Collections.Immutable;
using CsCheck;
using static GTStore.Core.Tests.TestRings;

namespace GTStore.Core.Tests;

/// <summary>
/// DESIGN.md Words: "preference list: the first N distinct nodes met walking clockwise from a key's
/// hash" and "range: the arc (previous token, token]". Dynamo paper 4.3: "the preference list ...
/// skipping positions in the ring to ensure that the list contains only distinct physical nodes".
/// </summary>
public sealed class RingTests
{
    // 100:n1 200:n1 300:n2 400:n3 500:n4 600:n2
    private static readonly Ring Hand = Build(7, [(100, 1), (200, 1), (300, 2), (400, 3), (500, 4), (600, 2)]);

    [Fact]
    public void Preference_list_is_the_first_N_distinct_nodes_clockwise()
    {
        Assert.Equal([N(1), N(2), N(3)], Hand.PreferenceList(50, 3));
        // 250 -> token 300 (n2), 400 (n3), 500 (n4).
        Assert.Equal([N(2), N(3), N(4)], Hand.PreferenceList(250, 3));
        // 150 -> token 200 (n1), 300 (n2), 400 (n3): the n1 token at 100 is behind the key.
        Assert.Equal([N(1), N(2), N(3)], Hand.PreferenceList(150, 3));
    }

    [Fact]
    public void Preference_list_skips_further_tokens_of_nodes_already_in_it()
    {
        // 50 -> 100 (n1), 200 (n1 again, skipped), 300 (n2), 400 (n3), 500 (n4).
        Assert.Equal([N(1), N(2), N(3), N(4)], Hand.PreferenceList(50, 4));
    }

    [Fact]
    public void A_hash_equal_to_a_token_belongs_to_that_token()
    {
        // Range (200, 300] holds 300.
        Assert.Equal([N(2), N(3), N(4)], Hand.PreferenceList(300, 3));
        Assert.Equal([N(3), N(4), N(2)], Hand.PreferenceList(301, 3));
    }

    [Fact]
    public void Preference_list_wraps_around_past_the_last_token()
    {
        // 550 -> 600 (n2), wrap: 100 (n1), 200 (n1 skip), 300 (n2 skip), 400 (n3).
        Assert.Equal([N(2), N(1), N(3)], Hand.PreferenceList(550, 3));
        // Past the last token the walk starts at the first token.
        Assert.Equal([N(1), N(2), N(3)], Hand.PreferenceList(601, 3));
        Assert.Equal([N(1), N(2), N(3)], Hand.PreferenceList(ulong.MaxValue, 3));
        Assert.Equal([N(1), N(2), N(3)], Hand.PreferenceList(0, 3));
    }

    [Fact]
    public void Preference_list_with_N_above_the_node_count_returns_every_node_once()
    {
        var list = Hand.PreferenceList(450, 7);
        Assert.Equal([N(4), N(2), N(1), N(3)], list);
    }

    [Fact]
    public void Preference_list_of_an_empty_ring_is_empty()
    {
        Assert.Empty(Ring.Empty.PreferenceList(123, 3));
    }

    [Fact]
    public void Preference_list_has_N_distinct_nodes_and_matches_the_reference_walk()
    {
        var gen = Gen.Select(Gen.Int[1, 12], Gen.Int[1, 8], Gen.Int[1, 7], Gen.ULong.Array[1, 20]);
        gen.Sample((nodes, tokens, n, hashes) =>
        {
            var ring = Grown(nodes, tokens);
            foreach (var h in hashes.Concat(ring.Tokens.Select(t => t.Position)))
            {
                var list = ring.PreferenceList(h, n);
                Assert.Equal(Math.Min(n, nodes), list.Length);
                Assert.Equal(list.Length, list.Distinct().Count());
                Assert.All(list, id => Assert.True(ring.Contains(id)));
                Assert.Equal(ReferencePreferenceList(ring, h, n), list);
                // The first replica owns the token that ends the key's range.
                Assert.Equal(list[0], ring.Tokens.Single(t => t.Position == ring.RangeOf(h).End).Owner);
            }
        }, iter: 200);
    }

    [Fact]
    public void RangeOf_is_the_arc_from_the_previous_token_to_the_next_token()
    {
        Assert.Equal(new HashRange(100, 200), Hand.RangeOf(150));
        Assert.Equal(new HashRange(100, 200), Hand.RangeOf(200));
        Assert.Equal(new HashRange(200, 300), Hand.RangeOf(201));
        // The first token's range wraps from the last token.
        Assert.Equal(new HashRange(600, 100), Hand.RangeOf(100));
        Assert.Equal(new HashRange(600, 100), Hand.RangeOf(0));
        Assert.Equal(new HashRange(600, 100), Hand.RangeOf(601));
        Assert.Equal(new HashRange(600, 100), Hand.RangeOf(ulong.MaxValue));
    }

    [Fact]
    public void RangeOf_contains_the_hash_for_random_rings()
    {
        Gen.Select(Gen.Int[1, 10], Gen.Int[1, 5], Gen.ULong).Sample((nodes, tokens, h) =>
        {
            var ring = Grown(nodes, tokens);
            Assert.True(ring.RangeOf(h).Contains(h));
        }, iter: 300);
    }

    [Fact]
    public void A_ring_with_one_token_has_one_range_covering_everything()
    {
        var one = Build(1, [(42, 1)]);
        Assert.True(one.RangeOf(7).IsFullRing);
        Assert.True(one.RangeOf(42).IsFullRing);
        Assert.Equal([N(1)], one.PreferenceList(ulong.MaxValue, 3));
    }

    [Fact]
    public void Partitions_tile_the_ring_and_primary_ownership_sums_to_one()
    {
        var ring = Grown(7, 3);
        UInt128 total = 0;
        foreach (var (range, _) in ring.Partitions(3))
            total += range.Width;
        Assert.Equal((UInt128)1 << 64, total);
        Assert.Equal(1.0, ring.PrimaryOwnership().Values.Sum(), 9);
    }

    [Fact]
    public void Ring_constructor_rejects_unsorted_tokens()
    {
        var ex = Assert.Throws<ArgumentException>(() => Build(1, [(200, 1), (100, 2)]));
        Assert.Contains("sorted", ex.Message);
    }

    [Fact]
    public void Ring_constructor_rejects_duplicate_token_positions()
    {
        Assert.Throws<ArgumentException>(() => Build(1, [(100, 1), (100, 2)]));
        Assert.Throws<ArgumentException>(() => Build(1, [(100, 1), (100, 1)]));
    }

    [Fact]
    public void Ring_constructor_rejects_tokens_owned_by_non_members()
    {
        var members = ImmutableSortedDictionary<NodeId, string>.Empty.Add(N(1), "sim://1");
        var ex = Assert.Throws<ArgumentException>(() => new Ring(1, [new Token(10, N(1)), new Token(20, N(9))], members));
        Assert.Contains("server9", ex.Message);
    }

    [Fact]
    public void Preference_list_never_names_the_manager_when_a_member_owns_no_token()
    {
        // Regression: PreferenceListFrom sized its answer by members, not token owners, so unfilled
        // slots stayed default(NodeId) = the manager. DESIGN.md Words: the preference list holds
        // "the first N distinct nodes met walking clockwise" — only nodes on the ring can be met.
        var members = ImmutableSortedDictionary<NodeId, string>.Empty.Add(N(1), "a").Add(N(2), "b");
        Ring ring;
        try
        {
            ring = new Ring(1, [new Token(100, N(1))], members);
        }
        catch (ArgumentException)
        {
            return; // Rejecting a tokenless member is an acceptable fix too.
        }
        var list = ring.PreferenceList(5, 3);
        Assert.DoesNotContain(NodeId.Manager, list);
        Assert.Equal([N(1)], list);
    }

    [Fact]
    public void Ring_With_sorts_the_tokens_it_is_given()
    {
        var ring = Ring.Empty.With(3, [new Token(300, N(1)), new Token(100, N(2))],
            ImmutableSortedDictionary<NodeId, string>.Empty.Add(N(1), "a").Add(N(2), "b"));
        Assert.Equal([100UL, 300UL], ring.Tokens.Select(t => t.Position));
        Assert.Equal(3, ring.Epoch);
    }
}
