namespace GTStore.Core.Messages;

/// <summary>
/// Every message exchanged by clients, nodes and the manager. Core decides what to send; the
/// Protocol layer encodes these records as frames. Node-to-node and manager-to-node messages are
/// one-way and carry operation ids in their bodies; client requests are answered on their
/// connection, matched by the frame's request id.
/// </summary>
public abstract record Message;

// ---- client -> node (request/response) --------------------------------------------------------

public enum ClientOp : byte { Get = 1, Put = 2, Delete = 3 }

/// <summary>A client's read, write or delete, sent to its forwarder.</summary>
public sealed record ClientRequest(ClientOp Op, byte[] Key, byte[]? Value) : Message;

public enum ReplyStatus : byte
{
    Ok = 0,
    NotFound = 1,
    /// <summary>The request was refused or could not reach its quorum; nothing was written.</summary>
    Failed = 2,
    /// <summary>The outcome is not known: the write may or may not have been applied.</summary>
    Unknown = 3,
    /// <summary>The request was malformed or too large; never retried.</summary>
    Invalid = 4,
    /// <summary>This node has left the cluster and did nothing: ask the manager for another forwarder and resend.</summary>
    Moved = 5,
}

/// <summary>Answer to a <see cref="ClientRequest"/>, naming the coordinator that served it.</summary>
public sealed record ClientReply(ReplyStatus Status, NodeId Coordinator, VersionedValue? Value, string? Error) : Message;

/// <summary>Ask a node for its own view (status, tests).</summary>
public sealed record NodeStatsRequest : Message;

/// <param name="Resp">The node's Redis-protocol address, or "" when it serves none.</param>
/// <param name="TombstonesPurged">Tombstones this node removed since it started (purge rounds, docs/ARCHITECTURE.md "Tombstones").</param>
/// <param name="RequestsCoordinated">Client requests (native or RESP) this node received and coordinated itself, since it started.</param>
/// <param name="Tombstones">Of the <paramref name="KeyCount"/> entries, how many are tombstones (deleted keys kept until purged).</param>
/// <param name="RequestsForwarded">Client requests this node received and forwarded to a replica of the key, since it started.</param>
public sealed record NodeStatsReply(NodeId Node, int Pid, long KeyCount, long Epoch, bool InTransition, string Engine, long Hints = 0, string Resp = "",
    long TombstonesPurged = 0, long RequestsCoordinated = 0, long RequestsForwarded = 0, long Handovers = 0,
    long ValueCacheHits = 0, long ValueCacheMisses = 0, long ValueCacheBytes = 0, long Tombstones = 0) : Message;

// ---- node <-> node (one-way) -----------------------------------------------------------------

/// <summary>
/// Coordinator to replica: store this version. <paramref name="OpId"/> 0 needs no ack (read repair).
/// With <paramref name="HintFor"/> set, the receiver is a stand-in (sloppy quorum): it keeps the
/// write as a hint for that unreachable replica and hands it back when the replica returns.
/// </summary>
public sealed record ReplicaWrite(long OpId, NodeId From, byte[] Key, VersionedValue Value, NodeId HintFor = default) : Message;

public sealed record ReplicaWriteAck(long OpId, NodeId From, bool Ok, string? Error) : Message;

/// <summary>A replica read; with <paramref name="HintFor"/> set, a stand-in answers from its store and its hints.</summary>
/// <summary>
/// Asks a replica for its copy of <paramref name="Key"/>. <paramref name="VersionOnly"/>: only the
/// version held is wanted (the coordinator has read its own copy and needs the value only if this
/// one is newer).
/// </summary>
public sealed record ReplicaRead(long OpId, NodeId From, byte[] Key, NodeId HintFor = default, bool VersionOnly = false) : Message;

/// <summary>
/// A replica's copy (null: not held). With <paramref name="VersionOnly"/> the value's bytes are
/// left out and only <c>Value.Version</c> means anything.
/// </summary>
public sealed record ReplicaReadReply(long OpId, NodeId From, bool Ok, VersionedValue? Value, string? Error, bool VersionOnly = false) : Message;

/// <summary>Forwarder to coordinator: run this client request.</summary>
public sealed record Forward(long OpId, NodeId From, ClientRequest Request) : Message;

public sealed record ForwardReply(long OpId, NodeId From, ClientReply Reply) : Message;

/// <summary>One batch of a transfer task; the receiver merges and acks.</summary>
public sealed record TransferBatch(long TransferId, int TaskIndex, int Sequence, NodeId From, IReadOnlyList<StoredEntry> Entries, bool Last) : Message;

public sealed record TransferBatchAck(long TransferId, int TaskIndex, int Sequence, NodeId From) : Message;

/// <summary>
/// Anti-entropy, step 1: a replica's hash summary of one range (a two-level Merkle tree: the
/// leaves are <see cref="AntiEntropy.Leaves"/> equal slices of the range).
/// </summary>
public sealed record SyncDigest(NodeId From, HashRange Range, IReadOnlyList<ulong> Leaves) : Message;

/// <summary>
/// Anti-entropy, step 2: the answer to a <see cref="SyncDigest"/> whose slices differ from the
/// receiver's: the digests of the finer parts of those slices (each bucket a slice holds, or the
/// part of one inside it; <see cref="AntiEntropy.PartsOf"/>), so that only the parts that differ
/// are exchanged. While writes are in flight most slices differ by a key or two: their parts
/// narrow that to a bucket each.
/// </summary>
public sealed record SyncParts(NodeId From, HashRange Range, IReadOnlyList<HashRange> Parts, IReadOnlyList<ulong> Digests) : Message;

/// <summary>
/// Anti-entropy, steps 3 and 4: the entries of the parts that differ. The first
/// (<paramref name="Final"/> false) asks the receiver to send its own entries of those parts back.
/// </summary>
public sealed record SyncEntries(NodeId From, HashRange Range, IReadOnlyList<HashRange> Parts, IReadOnlyList<StoredEntry> Entries, bool Final) : Message;

/// <summary>
/// Tombstone purge, step 1: the first replica of a range asks the other replicas which of these
/// tombstones (each entry's value is null) they hold at exactly that version, at ring
/// <paramref name="Epoch"/> with no change pending.
/// </summary>
public sealed record PurgeProposal(long OpId, NodeId From, long Epoch, HashRange Range, IReadOnlyList<StoredEntry> Entries) : Message;

/// <summary>Tombstone purge, step 2: the indices (into the proposal's entries) the replica holds exactly.</summary>
public sealed record PurgeConfirm(long OpId, NodeId From, IReadOnlyList<int> Held) : Message;

/// <summary>
/// Tombstone purge, step 3: every replica holds these tombstones; each receiver removes a key only
/// if what it holds is still exactly that tombstone (compare-and-delete: a newer write survives).
/// </summary>
public sealed record PurgeCommit(NodeId From, long Epoch, HashRange Range, IReadOnlyList<StoredEntry> Entries) : Message;

// ---- manager <-> node (one-way) --------------------------------------------------------------

/// <summary>
/// The rings a node must use. <paramref name="Pending"/> is set while a membership change is being
/// transferred: writes then go to the replicas of both rings.
/// </summary>
public sealed record RingUpdate(ClusterConfig Config, Ring Current, Ring? Pending) : Message;

public sealed record RingAck(NodeId From, long Epoch, long PendingEpoch) : Message;

/// <summary>
/// A node is alive; sent every <see cref="ClusterConfig.HeartbeatIntervalMs"/>.
/// <paramref name="HintFloor"/> is the lowest version timestamp among the hints it holds, or its
/// current time (as a timestamp) when it holds none: no hint it holds is older.
/// </summary>
public sealed record Heartbeat(NodeId From, long HintFloor = 0) : Message;

/// <summary>
/// The manager's answer to a heartbeat: no hint held by any member (or by a node that departed
/// less than the tombstone grace ago) is older than <paramref name="Floor"/>, and every member is
/// up at ring <paramref name="Epoch"/> with no change pending. 0 forbids every purge (a member is
/// down, behind, or has not reported since the manager started).
/// </summary>
public sealed record PurgeFloor(long Epoch, long Floor) : Message;

/// <summary>
/// The manager asks a source node to stream these tasks (indices into the plan). A transfer's id
/// is the epoch of the pending ring it fills (high bits) and the plan's attempt (low 16 bits): a
/// plan is redone, under a new id, when a source goes down.
/// </summary>
public sealed record StartTransfers(long TransferId, IReadOnlyList<(int Index, TransferTask Task)> Tasks) : Message
{
    public static long IdFor(long pendingEpoch, int attempt) => (pendingEpoch << 16) | (uint)(attempt & 0xFFFF);

    public long PendingEpoch => TransferId >> 16;
}

public sealed record TransferTaskDone(NodeId From, long TransferId, int TaskIndex) : Message;

/// <summary>The manager tells a leaving node that its data is handed off and it may exit.</summary>
public sealed record LeaveDone(NodeId Node) : Message;

// ---- to the manager (request/response) -------------------------------------------------------

/// <summary>
/// A node process announces itself; the reply is <see cref="JoinReply"/> with its id. A restarted
/// node names the id it had (<paramref name="PreviousId"/>) to come back as the same member.
/// </summary>
public sealed record JoinRequest(string Address, int Pid, NodeId PreviousId = default) : Message;

/// <param name="Restarted">The node is back as the member it was, on its own data.</param>
/// <param name="DiscardData">The node's previous identity was removed from the cluster: what it holds is stale and must go.</param>
public sealed record JoinReply(NodeId Node, ClusterConfig Config, bool Restarted = false, bool DiscardData = false) : Message;

public sealed record ClientInitRequest : Message;

public sealed record ClientInitReply(long ClientId, NodeId Forwarder, string ForwarderAddress, ClusterConfig Config) : Message;

public sealed record StatusRequest : Message;

public enum MemberState : byte { Joining = 1, Up = 2, Leaving = 3 }

/// <param name="Down">The manager has had no heartbeat from the node for longer than the failure timeout.</param>
public sealed record MemberStatus(NodeId Node, string Address, int Pid, MemberState State, int Tokens, bool Down = false);

public sealed record StatusReply(ClusterConfig Config, long Epoch, bool InTransition, IReadOnlyList<MemberStatus> Members) : Message;

/// <summary>Admin (CLI) asks the manager to remove a node gracefully; answered when done.</summary>
public sealed record AdminLeave(NodeId Node) : Message;

/// <summary>A request that could not be served, with the reason.</summary>
public sealed record ErrorReply(string Message) : Message;

/// <summary>A plain acknowledgement.</summary>
public sealed record OkReply : Message;

// ---- manager persistence -----------------------------------------------------------------------

/// <summary>
/// Everything the manager must not forget, written durably on every change: the committed ring,
/// the membership change in progress (its pending ring), members and the next ids to hand out.
/// </summary>
public sealed record ManagerSnapshot(
    ClusterConfig Config,
    Ring Current,
    Ring? Pending,
    IReadOnlyList<MemberStatus> Members,
    int NextNodeId,
    long NextClientId) : Message;
