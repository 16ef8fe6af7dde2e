namespace GTStore.Core.Tests;

/// <summary>
/// ClusterConfig.Validate: "Every problem with the settings at once, each naming the setting and the
/// allowed range." DESIGN.md Versions: "an oversize key or value gets a clear error naming the limit."
/// </summary>
public sealed class ClusterConfigTests
{
    [Fact]
    public void Default_config_is_valid_with_the_seed_defaults()
    {
        // Seed: "The replication parameter N is 3 as default", "The default value of R and W is 2",
        // "Each storage node maintains V virtual nodes (V=3 by default)".
        var c = new ClusterConfig();
        Assert.Empty(c.Validate());
        Assert.Equal((3, 2, 2, 3), (c.ReplicationFactor, c.ReadQuorum, c.WriteQuorum, c.TokensPerNode));
    }

    [Fact]
    public void Validate_reports_every_bad_setting_at_once_naming_the_flag_and_range()
    {
        var c = new ClusterConfig { ReplicationFactor = 3, ReadQuorum = 4, WriteQuorum = 0, TokensPerNode = 0 };
        var errors = c.Validate();
        Assert.Equal(3, errors.Count);
        Assert.Contains(errors, e => e.Contains("--read-quorum") && e.Contains("1..3") && e.Contains("got 4"));
        Assert.Contains(errors, e => e.Contains("--write-quorum") && e.Contains("1..3") && e.Contains("got 0"));
        Assert.Contains(errors, e => e.Contains("--tokens") && e.Contains($"1..{Limits.TokensPerNodeMax}") && e.Contains("got 0"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(Limits.ReplicationFactorMax + 1)]
    public void Validate_rejects_a_replication_factor_outside_1_to_the_limit(int n)
    {
        var errors = new ClusterConfig { ReplicationFactor = n, ReadQuorum = 1, WriteQuorum = 1 }.Validate();
        Assert.Contains(errors, e => e.Contains("--rep") && e.Contains($"1..{Limits.ReplicationFactorMax}") && e.Contains($"got {n}"));
    }

    [Fact]
    public void Validate_with_N_0_reports_N_and_the_quorums_that_exceed_it()
    {
        var errors = new ClusterConfig { ReplicationFactor = 0, TokensPerNode = 0 }.Validate();
        Assert.Contains(errors, e => e.Contains("--rep"));
        Assert.Contains(errors, e => e.Contains("--read-quorum"));
        Assert.Contains(errors, e => e.Contains("--write-quorum"));
        Assert.Contains(errors, e => e.Contains("--tokens"));
        Assert.Equal(4, errors.Count);
    }

    [Fact]
    public void Validate_accepts_R_and_W_equal_to_N_and_rejects_R_above_N()
    {
        Assert.Empty(new ClusterConfig { ReplicationFactor = 5, ReadQuorum = 5, WriteQuorum = 5 }.Validate());
        Assert.Single(new ClusterConfig { ReplicationFactor = 5, ReadQuorum = 6, WriteQuorum = 5 }.Validate());
    }

    [Fact]
    public void Validate_checks_size_limits_and_timeouts()
    {
        var c = new ClusterConfig { KeyBytesMax = 0, ValueBytesMax = -1, RequestTimeoutMs = 5, MembershipRetryMs = 700_000 };
        var errors = c.Validate();
        Assert.Equal(4, errors.Count);
        Assert.Contains(errors, e => e.Contains("key size limit") && e.Contains($"1..{Limits.KeyBytesMaxCeiling}"));
        Assert.Contains(errors, e => e.Contains("value size limit") && e.Contains($"0..{Limits.ValueBytesMaxCeiling}"));
        Assert.Contains(errors, e => e.Contains("request timeout") && e.Contains("got 5"));
        Assert.Contains(errors, e => e.Contains("membership retry") && e.Contains("got 700000"));
    }

    [Fact]
    public void CheckSizes_accepts_keys_and_values_within_the_limits()
    {
        var c = new ClusterConfig { KeyBytesMax = 10, ValueBytesMax = 20 };
        Assert.Null(c.CheckSizes(10, 20));
        Assert.Null(c.CheckSizes(1, 0));
        Assert.Null(c.CheckSizes(1, null));
    }

    [Fact]
    public void CheckSizes_names_the_key_limit()
    {
        var c = new ClusterConfig { KeyBytesMax = 10 };
        Assert.Equal("key of 11 bytes exceeds the limit of 10 bytes", c.CheckSizes(11, null));
        Assert.Contains("1..10 bytes", c.CheckSizes(0, null));
    }

    [Fact]
    public void CheckSizes_names_the_value_limit()
    {
        var c = new ClusterConfig { ValueBytesMax = 20 };
        Assert.Equal("value of 21 bytes exceeds the limit of 20 bytes", c.CheckSizes(5, 21));
    }

    [Theory]
    [InlineData(5_999)]
    [InlineData(ClusterConfig.TombstoneGraceMaxMs + 1)]
    public void Validate_rejects_a_tombstone_grace_outside_its_range_naming_the_flag_and_limits(int graceMs)
    {
        // The grace must cover a request timeout and two failure timeouts (2000 + 2 x 2000 by default).
        var errors = new ClusterConfig { TombstoneGraceMs = graceMs }.Validate();
        var error = Assert.Single(errors);
        Assert.Contains("--tombstone-grace-ms", error);
        Assert.Contains($"6000 (request timeout + 2 x failure timeout)..{ClusterConfig.TombstoneGraceMaxMs} ms", error);
        Assert.Contains($"got {graceMs}", error);
        Assert.Empty(new ClusterConfig { TombstoneGraceMs = 6_000 }.Validate());
    }
}
