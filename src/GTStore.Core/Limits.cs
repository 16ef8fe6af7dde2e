namespace GTStore.Core;

/// <summary>
/// Every limit of the system in one place (TigerBeetle style: put a limit on everything).
/// Units are last in the names. Values that users may change are validated by
/// <see cref="ClusterConfig.Validate"/>; the rest are fixed for a build.
/// </summary>
public static class Limits
{
    /// <summary>Largest key accepted, in bytes (default; configurable per cluster).</summary>
    public const int KeyBytesMaxDefault = 4 * 1024;

    /// <summary>Largest value accepted, in bytes (default; configurable per cluster).</summary>
    public const int ValueBytesMaxDefault = 1024 * 1024;

    /// <summary>Largest key any cluster may be configured for.</summary>
    public const int KeyBytesMaxCeiling = 64 * 1024;

    /// <summary>Largest value any cluster may be configured for.</summary>
    public const int ValueBytesMaxCeiling = 16 * 1024 * 1024;

    /// <summary>
    /// Largest frame body on the wire (type + request id + payload). A frame carries at most one
    /// value of the ceiling size plus its key and framing, or one transfer batch.
    /// </summary>
    public const int FrameBytesMax = ValueBytesMaxCeiling + KeyBytesMaxCeiling + 64 * 1024;

    /// <summary>Soft cap on the payload of one transfer batch; a single larger entry still goes alone.</summary>
    public const int TransferBatchBytesMax = 1024 * 1024;

    /// <summary>Most entries in one transfer batch.</summary>
    public const int TransferBatchEntriesMax = 4096;

    /// <summary>
    /// Most parts one anti-entropy exchange compares (<see cref="Messages.SyncParts"/>): 96 KiB of
    /// parts and digests, and more than the buckets of any one slice (a slice is at most a 64th of
    /// the ring's 65,536 buckets, plus the two it may cut).
    /// </summary>
    public const int SyncPartsMax = 4096;

    /// <summary>Most tombstones one purge proposal carries (its bytes are capped by <see cref="TransferBatchBytesMax"/>).</summary>
    public const int PurgeBatchEntriesMax = 1024;

    /// <summary>
    /// Most purged keys a node remembers (for the tombstone grace after their purge, so a late
    /// message carrying an older version cannot bring them back); when full, it purges no more
    /// until entries age out.
    /// </summary>
    public const int PurgedKeysRememberedMax = 262_144;

    /// <summary>Most frames queued for sending on one connection before senders wait (backpressure).</summary>
    public const int ConnectionSendQueueFramesMax = 4096;

    /// <summary>Most requests a node coordinates at once; more are refused with "overloaded".</summary>
    public const int CoordinatorRequestsInFlightMax = 65_536;

    /// <summary>Most nodes in one cluster.</summary>
    public const int NodesMax = 1024;

    /// <summary>Most tokens one node may be given at join.</summary>
    public const int TokensPerNodeMax = 256;

    /// <summary>Largest replication factor.</summary>
    public const int ReplicationFactorMax = 7;

    /// <summary>Longest error message carried on the wire, in bytes.</summary>
    public const int ErrorMessageBytesMax = 4096;
}
