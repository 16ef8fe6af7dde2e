namespace GTStore.Core;

/// <summary>
/// Cluster-wide settings chosen at <c>gtstore start</c> and carried by the manager to every node.
/// </summary>
public sealed record ClusterConfig
{
    /// <summary>N: copies of every key (the seed's default 3).</summary>
    public int ReplicationFactor { get; init; } = 3;

    /// <summary>R: replica answers a read waits for.</summary>
    public int ReadQuorum { get; init; } = 2;

    /// <summary>W: replica acknowledgements a write waits for.</summary>
    public int WriteQuorum { get; init; } = 2;

    /// <summary>V: tokens a node gets when it joins (the seed's default 3).</summary>
    public int TokensPerNode { get; init; } = 3;

    public int KeyBytesMax { get; init; } = Limits.KeyBytesMaxDefault;

    public int ValueBytesMax { get; init; } = Limits.ValueBytesMaxDefault;

    /// <summary>How long a coordinator waits for replicas, and a forwarder for a coordinator.</summary>
    public int RequestTimeoutMs { get; init; } = 2000;

    /// <summary>How long the manager waits before resending an unanswered membership message.</summary>
    public int MembershipRetryMs { get; init; } = 300;

    /// <summary>How often a node tells the manager it is alive.</summary>
    public int HeartbeatIntervalMs { get; init; } = 200;

    /// <summary>How long without a heartbeat before the manager counts a node as down.</summary>
    public int FailureTimeoutMs { get; init; } = 2000;

    /// <summary>
    /// How long a node may stay down before the manager removes it and re-replicates its ranges
    /// from the surviving replicas (permanent failure).
    /// </summary>
    public int RemoveAfterMs { get; init; } = 60_000;

    /// <summary>
    /// How old a tombstone (by its version's physical time) must be before the replicas may purge
    /// it. It covers writes, repairs, hints and transfer batches still in flight, and clock skew
    /// between nodes; it must exceed the request timeout plus two failure timeouts (the age of the
    /// hint reports the manager combines). See docs/ARCHITECTURE.md "Tombstones".
    /// </summary>
    public int TombstoneGraceMs { get; init; } = 600_000;

    /// <summary>Smallest <see cref="TombstoneGraceMs"/> these timeouts allow.</summary>
    public int TombstoneGraceMinMs => RequestTimeoutMs + 2 * FailureTimeoutMs;

    /// <summary>Largest <see cref="TombstoneGraceMs"/>: seven days.</summary>
    public const int TombstoneGraceMaxMs = 7 * 24 * 3600 * 1000;

    /// <summary>Every problem with the settings at once, each naming the setting and the allowed range.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (ReplicationFactor is < 1 or > Limits.ReplicationFactorMax)
            errors.Add($"replication factor (--rep) must be 1..{Limits.ReplicationFactorMax}, got {ReplicationFactor}");
        var n = Math.Clamp(ReplicationFactor, 1, Limits.ReplicationFactorMax);
        if (ReadQuorum < 1 || ReadQuorum > n)
            errors.Add($"read quorum (--read-quorum) must be 1..{n} (the replication factor), got {ReadQuorum}");
        if (WriteQuorum < 1 || WriteQuorum > n)
            errors.Add($"write quorum (--write-quorum) must be 1..{n} (the replication factor), got {WriteQuorum}");
        if (TokensPerNode is < 1 or > Limits.TokensPerNodeMax)
            errors.Add($"tokens per node (--tokens) must be 1..{Limits.TokensPerNodeMax}, got {TokensPerNode}");
        if (KeyBytesMax is < 1 or > Limits.KeyBytesMaxCeiling)
            errors.Add($"key size limit must be 1..{Limits.KeyBytesMaxCeiling} bytes, got {KeyBytesMax}");
        if (ValueBytesMax is < 0 or > Limits.ValueBytesMaxCeiling)
            errors.Add($"value size limit must be 0..{Limits.ValueBytesMaxCeiling} bytes, got {ValueBytesMax}");
        if (RequestTimeoutMs is < 10 or > 600_000)
            errors.Add($"request timeout must be 10..600000 ms, got {RequestTimeoutMs}");
        if (MembershipRetryMs is < 10 or > 600_000)
            errors.Add($"membership retry must be 10..600000 ms, got {MembershipRetryMs}");
        if (HeartbeatIntervalMs is < 10 or > 60_000)
            errors.Add($"heartbeat interval must be 10..60000 ms, got {HeartbeatIntervalMs}");
        if (FailureTimeoutMs < 2 * HeartbeatIntervalMs || FailureTimeoutMs > 600_000)
            errors.Add($"failure timeout (--failure-timeout-ms) must be {2 * HeartbeatIntervalMs}..600000 ms (at least two heartbeats), got {FailureTimeoutMs}");
        if (RemoveAfterMs < FailureTimeoutMs || RemoveAfterMs > 86_400_000)
            errors.Add($"removal delay (--remove-after-ms) must be {FailureTimeoutMs} (the failure timeout)..86400000 ms, got {RemoveAfterMs}");
        if (TombstoneGraceMs < TombstoneGraceMinMs || TombstoneGraceMs > TombstoneGraceMaxMs)
            errors.Add($"tombstone grace (--tombstone-grace-ms) must be {TombstoneGraceMinMs} (request timeout + 2 x failure timeout)..{TombstoneGraceMaxMs} ms, got {TombstoneGraceMs}");
        return errors;
    }

    /// <summary>Null when the key and value fit the limits, else a message naming the limit.</summary>
    public string? CheckSizes(int keyBytes, int? valueBytes)
    {
        if (keyBytes == 0)
            return "key is empty; keys must be 1.." + KeyBytesMax + " bytes";
        if (keyBytes > KeyBytesMax)
            return $"key of {keyBytes} bytes exceeds the limit of {KeyBytesMax} bytes";
        if (valueBytes > ValueBytesMax)
            return $"value of {valueBytes} bytes exceeds the limit of {ValueBytesMax} bytes";
        return null;
    }
}
