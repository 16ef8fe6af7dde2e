using System.Buffers;
using System.Collections.Immutable;
using GTStore.Core;
using GTStore.Core.Messages;

namespace GTStore.Protocol;

/// <summary>
/// Encodes Core's messages as frame payloads and decodes them back. The frame type says which
/// message a payload holds. Decoding validates every field and throws <see cref="ProtocolException"/>
/// with the field's name on anything malformed.
/// </summary>
public static class MessageCodec
{
    public static ushort TypeOf(Message message) => message switch
    {
        ClientRequest => 1,
        ClientReply => 2,
        NodeStatsRequest => 3,
        NodeStatsReply => 4,
        ReplicaWrite => 10,
        ReplicaWriteAck => 11,
        ReplicaRead => 12,
        ReplicaReadReply => 13,
        Forward => 14,
        ForwardReply => 15,
        TransferBatch => 16,
        TransferBatchAck => 17,
        SyncDigest => 18,
        SyncEntries => 19,
        RingUpdate => 20,
        RingAck => 21,
        StartTransfers => 22,
        TransferTaskDone => 23,
        LeaveDone => 24,
        Heartbeat => 25,
        PurgeFloor => 26,
        PurgeProposal => 27,
        PurgeConfirm => 28,
        PurgeCommit => 29,
        JoinRequest => 30,
        JoinReply => 31,
        ClientInitRequest => 32,
        ClientInitReply => 33,
        StatusRequest => 34,
        StatusReply => 35,
        AdminLeave => 36,
        ErrorReply => 37,
        OkReply => 38,
        ManagerSnapshot => 40,
        SyncParts => 41,
        _ => throw new ArgumentException($"no wire type for {message.GetType().Name}", nameof(message)),
    };

    public static byte[] Encode(Message message)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        Encode(message, new WireWriter(buffer));
        return buffer.WrittenSpan.ToArray();
    }

    public static void Encode(Message message, WireWriter w)
    {
        switch (message)
        {
            case ClientRequest m: w.Byte((byte)m.Op); w.Bytes(m.Key); w.NullableBytes(m.Value); break;
            case ClientReply m: w.Byte((byte)m.Status); Node(w, m.Coordinator); OptionalValue(w, m.Value); w.NullableString(m.Error); break;
            case NodeStatsRequest or ClientInitRequest or StatusRequest or OkReply: break;
            case NodeStatsReply m: Node(w, m.Node); w.I32(m.Pid); w.I64(m.KeyCount); w.I64(m.Epoch); w.Bool(m.InTransition); w.String(m.Engine); w.I64(m.Hints); w.String(m.Resp); w.I64(m.TombstonesPurged); w.I64(m.RequestsCoordinated); w.I64(m.RequestsForwarded); w.I64(m.Handovers); w.I64(m.ValueCacheHits); w.I64(m.ValueCacheMisses); w.I64(m.ValueCacheBytes); w.I64(m.Tombstones); break;
            case ReplicaWrite m: w.I64(m.OpId); Node(w, m.From); w.Bytes(m.Key); Value(w, m.Value); Node(w, m.HintFor); break;
            case ReplicaWriteAck m: w.I64(m.OpId); Node(w, m.From); w.Bool(m.Ok); w.NullableString(m.Error); break;
            case ReplicaRead m: w.I64(m.OpId); Node(w, m.From); w.Bytes(m.Key); Node(w, m.HintFor); w.Bool(m.VersionOnly); break;
            case ReplicaReadReply m: w.I64(m.OpId); Node(w, m.From); w.Bool(m.Ok); OptionalValue(w, m.Value); w.NullableString(m.Error); w.Bool(m.VersionOnly); break;
            case Forward m: w.I64(m.OpId); Node(w, m.From); Encode(m.Request, w); break;
            case ForwardReply m: w.I64(m.OpId); Node(w, m.From); Encode(m.Reply, w); break;
            case TransferBatch m:
                w.I64(m.TransferId); w.I32(m.TaskIndex); w.I32(m.Sequence); Node(w, m.From); w.Bool(m.Last);
                w.I32(m.Entries.Count);
                foreach (var e in m.Entries)
                {
                    w.U64(e.Hash); w.Bytes(e.Key); Value(w, e.Value);
                }
                break;
            case TransferBatchAck m: w.I64(m.TransferId); w.I32(m.TaskIndex); w.I32(m.Sequence); Node(w, m.From); break;
            case SyncDigest m:
                Node(w, m.From); w.U64(m.Range.Start); w.U64(m.Range.End); w.I32(m.Leaves.Count);
                foreach (var leaf in m.Leaves)
                    w.U64(leaf);
                break;
            case SyncEntries m:
                Node(w, m.From); w.U64(m.Range.Start); w.U64(m.Range.End); w.Bool(m.Final); w.I32(m.Parts.Count);
                foreach (var part in m.Parts)
                {
                    w.U64(part.Start); w.U64(part.End);
                }
                w.I32(m.Entries.Count);
                foreach (var e in m.Entries)
                {
                    w.U64(e.Hash); w.Bytes(e.Key); Value(w, e.Value);
                }
                break;
            case SyncParts m:
                Node(w, m.From); w.U64(m.Range.Start); w.U64(m.Range.End); w.I32(m.Parts.Count);
                for (var i = 0; i < m.Parts.Count; i++)
                {
                    w.U64(m.Parts[i].Start); w.U64(m.Parts[i].End); w.U64(m.Digests[i]);
                }
                break;
            case RingUpdate m: Config(w, m.Config); RingOf(w, m.Current); w.Bool(m.Pending is not null); if (m.Pending is not null) RingOf(w, m.Pending); break;
            case RingAck m: Node(w, m.From); w.I64(m.Epoch); w.I64(m.PendingEpoch); break;
            case StartTransfers m:
                w.I64(m.TransferId); w.I32(m.Tasks.Count);
                foreach (var (index, task) in m.Tasks)
                {
                    w.I32(index); w.U64(task.Range.Start); w.U64(task.Range.End); Node(w, task.Source); Node(w, task.Destination);
                }
                break;
            case TransferTaskDone m: Node(w, m.From); w.I64(m.TransferId); w.I32(m.TaskIndex); break;
            case LeaveDone m: Node(w, m.Node); break;
            case Heartbeat m: Node(w, m.From); w.I64(m.HintFloor); break;
            case PurgeFloor m: w.I64(m.Epoch); w.I64(m.Floor); break;
            case PurgeProposal m: w.I64(m.OpId); Node(w, m.From); w.I64(m.Epoch); w.U64(m.Range.Start); w.U64(m.Range.End); Entries(w, m.Entries); break;
            case PurgeConfirm m:
                w.I64(m.OpId); Node(w, m.From); w.I32(m.Held.Count);
                foreach (var i in m.Held)
                    w.I32(i);
                break;
            case PurgeCommit m: Node(w, m.From); w.I64(m.Epoch); w.U64(m.Range.Start); w.U64(m.Range.End); Entries(w, m.Entries); break;
            case JoinRequest m: w.String(m.Address); w.I32(m.Pid); Node(w, m.PreviousId); break;
            case JoinReply m: Node(w, m.Node); Config(w, m.Config); w.Bool(m.Restarted); w.Bool(m.DiscardData); break;
            case ClientInitReply m: w.I64(m.ClientId); Node(w, m.Forwarder); w.String(m.ForwarderAddress); Config(w, m.Config); break;
            case StatusReply m:
                Config(w, m.Config); w.I64(m.Epoch); w.Bool(m.InTransition); Members(w, m.Members);
                break;
            case AdminLeave m: Node(w, m.Node); break;
            case ErrorReply m: w.String(m.Message); break;
            case ManagerSnapshot m:
                Config(w, m.Config); RingOf(w, m.Current); w.Bool(m.Pending is not null); if (m.Pending is not null) RingOf(w, m.Pending);
                Members(w, m.Members); w.I32(m.NextNodeId); w.I64(m.NextClientId);
                break;
            default: throw new ArgumentException($"no encoding for {message.GetType().Name}", nameof(message));
        }
    }

    /// <summary>Decodes a payload of frame type <paramref name="type"/>; throws <see cref="ProtocolException"/> if malformed.</summary>
    public static Message Decode(ushort type, ReadOnlySpan<byte> payload)
    {
        var r = new WireReader(payload);
        var message = Decode(type, ref r);
        r.End(message.GetType().Name);
        return message;
    }

    private static Message Decode(ushort type, ref WireReader r)
    {
        switch (type)
        {
            case 1: return DecodeClientRequest(ref r);
            case 2: return DecodeClientReply(ref r);
            case 3: return new NodeStatsRequest();
            case 4: return new NodeStatsReply(Node(ref r), r.I32("pid"), r.I64("key count"), r.I64("epoch"), r.Bool("in transition"), r.String("engine"), r.I64("hints"), r.String("resp"), r.I64("tombstones purged"), r.I64("requests coordinated"), r.I64("requests forwarded"), r.I64("handovers"), r.I64("value cache hits"), r.I64("value cache misses"), r.I64("value cache bytes"), r.I64("tombstones"));
            case 10: return new ReplicaWrite(r.I64("op id"), Node(ref r), r.Bytes("key"), Value(ref r), Node(ref r));
            case 11: return new ReplicaWriteAck(r.I64("op id"), Node(ref r), r.Bool("ok"), r.NullableString("error"));
            case 12: return new ReplicaRead(r.I64("op id"), Node(ref r), r.Bytes("key"), Node(ref r), r.Bool("version only"));
            case 13: return new ReplicaReadReply(r.I64("op id"), Node(ref r), r.Bool("ok"), OptionalValue(ref r), r.NullableString("error"), r.Bool("version only"));
            case 14: return new Forward(r.I64("op id"), Node(ref r), DecodeClientRequest(ref r));
            case 15: return new ForwardReply(r.I64("op id"), Node(ref r), DecodeClientReply(ref r));
            case 16:
                {
                    var id = r.I64("transfer id");
                    var index = r.I32("task index");
                    var sequence = r.I32("sequence");
                    var from = Node(ref r);
                    var last = r.Bool("last");
                    var count = r.Count("entries", 8 + 4 + 8 + 4 + 4);
                    var entries = new StoredEntry[count];
                    for (var i = 0; i < count; i++)
                        entries[i] = new StoredEntry(r.U64("hash"), r.Bytes("key"), Value(ref r));
                    return new TransferBatch(id, index, sequence, from, entries, last);
                }
            case 17: return new TransferBatchAck(r.I64("transfer id"), r.I32("task index"), r.I32("sequence"), Node(ref r));
            case 18:
                {
                    var from = Node(ref r);
                    var range = new HashRange(r.U64("range start"), r.U64("range end"));
                    var count = r.Count("leaves", 8);
                    var leaves = new ulong[count];
                    for (var i = 0; i < count; i++)
                        leaves[i] = r.U64("leaf");
                    return new SyncDigest(from, range, leaves);
                }
            case 19:
                {
                    var from = Node(ref r);
                    var range = new HashRange(r.U64("range start"), r.U64("range end"));
                    var final = r.Bool("final");
                    var partCount = r.Count("parts", 16);
                    var parts = new HashRange[partCount];
                    for (var i = 0; i < partCount; i++)
                        parts[i] = new HashRange(r.U64("part start"), r.U64("part end"));
                    var count = r.Count("entries", 8 + 4 + 8 + 4 + 4);
                    var entries = new StoredEntry[count];
                    for (var i = 0; i < count; i++)
                        entries[i] = new StoredEntry(r.U64("hash"), r.Bytes("key"), Value(ref r));
                    return new SyncEntries(from, range, parts, entries, final);
                }
            case 20:
                {
                    var config = Config(ref r);
                    var current = RingOf(ref r);
                    return new RingUpdate(config, current, r.Bool("has pending") ? RingOf(ref r) : null);
                }
            case 21: return new RingAck(Node(ref r), r.I64("epoch"), r.I64("pending epoch"));
            case 22:
                {
                    var id = r.I64("transfer id");
                    var count = r.Count("tasks", 4 + 8 + 8 + 4 + 4);
                    var tasks = new List<(int, TransferTask)>(count);
                    for (var i = 0; i < count; i++)
                        tasks.Add((r.I32("task index"), new TransferTask(new HashRange(r.U64("range start"), r.U64("range end")), Node(ref r), Node(ref r))));
                    return new StartTransfers(id, tasks);
                }
            case 23: return new TransferTaskDone(Node(ref r), r.I64("transfer id"), r.I32("task index"));
            case 24: return new LeaveDone(Node(ref r));
            case 25: return new Heartbeat(Node(ref r), r.I64("hint floor"));
            case 26: return new PurgeFloor(r.I64("epoch"), r.I64("floor"));
            case 27: return new PurgeProposal(r.I64("op id"), Node(ref r), r.I64("epoch"), new HashRange(r.U64("range start"), r.U64("range end")), Entries(ref r));
            case 28:
                {
                    var opId = r.I64("op id");
                    var from = Node(ref r);
                    var count = r.Count("held", 4);
                    var held = new int[count];
                    for (var i = 0; i < count; i++)
                        held[i] = r.I32("held index");
                    return new PurgeConfirm(opId, from, held);
                }
            case 29: return new PurgeCommit(Node(ref r), r.I64("epoch"), new HashRange(r.U64("range start"), r.U64("range end")), Entries(ref r));
            case 30: return new JoinRequest(r.String("address"), r.I32("pid"), Node(ref r));
            case 31: return new JoinReply(Node(ref r), Config(ref r), r.Bool("restarted"), r.Bool("discard data"));
            case 32: return new ClientInitRequest();
            case 33: return new ClientInitReply(r.I64("client id"), Node(ref r), r.String("forwarder address"), Config(ref r));
            case 34: return new StatusRequest();
            case 35: return new StatusReply(Config(ref r), r.I64("epoch"), r.Bool("in transition"), Members(ref r));
            case 36: return new AdminLeave(Node(ref r));
            case 37: return new ErrorReply(r.String("message"));
            case 38: return new OkReply();
            case 40:
                {
                    var config = Config(ref r);
                    var current = RingOf(ref r);
                    var pending = r.Bool("has pending") ? RingOf(ref r) : null;
                    return new ManagerSnapshot(config, current, pending, Members(ref r), r.I32("next node id"), r.I64("next client id"));
                }
            case 41:
                {
                    var from = Node(ref r);
                    var range = new HashRange(r.U64("range start"), r.U64("range end"));
                    var count = r.Count("parts", 8 + 8 + 8);
                    var parts = new HashRange[count];
                    var digests = new ulong[count];
                    for (var i = 0; i < count; i++)
                    {
                        parts[i] = new HashRange(r.U64("part start"), r.U64("part end"));
                        digests[i] = r.U64("part digest");
                    }
                    return new SyncParts(from, range, parts, digests);
                }
            default: throw new ProtocolException($"unknown message type {type}");
        }
    }

    private static ClientRequest DecodeClientRequest(ref WireReader r)
    {
        var op = r.Byte("op");
        if (op is < (byte)ClientOp.Get or > (byte)ClientOp.Delete)
            throw new ProtocolException($"client op must be 1 (get), 2 (put) or 3 (delete), got {op}");
        return new ClientRequest((ClientOp)op, r.Bytes("key"), r.NullableBytes("value"));
    }

    private static ClientReply DecodeClientReply(ref WireReader r)
    {
        var status = r.Byte("status");
        if (status > (byte)ReplyStatus.Moved)
            throw new ProtocolException($"reply status must be 0..{(byte)ReplyStatus.Moved}, got {status}");
        return new ClientReply((ReplyStatus)status, Node(ref r), OptionalValue(ref r), r.NullableString("error"));
    }

    private static void Entries(WireWriter w, IReadOnlyList<StoredEntry> entries)
    {
        w.I32(entries.Count);
        foreach (var e in entries)
        {
            w.U64(e.Hash); w.Bytes(e.Key); Value(w, e.Value);
        }
    }

    private static StoredEntry[] Entries(ref WireReader r)
    {
        var count = r.Count("entries", 8 + 4 + 8 + 4 + 4);
        var entries = new StoredEntry[count];
        for (var i = 0; i < count; i++)
            entries[i] = new StoredEntry(r.U64("hash"), r.Bytes("key"), Value(ref r));
        return entries;
    }

    private static void Node(WireWriter w, NodeId id) => w.I32(id.Value);

    private static NodeId Node(ref WireReader r)
    {
        var v = r.I32("node id");
        if (v < -1)
            throw new ProtocolException($"node id must be -1 or more, got {v}");
        return new NodeId(v);
    }

    private static void Value(WireWriter w, VersionedValue v)
    {
        w.I64(v.Version.Timestamp);
        w.I32(v.Version.Node);
        w.NullableBytes(v.Value);
    }

    private static VersionedValue Value(ref WireReader r) =>
        new(new Core.Version(r.I64("version timestamp"), r.I32("version node")), r.NullableBytes("value"));

    private static void OptionalValue(WireWriter w, VersionedValue? v)
    {
        w.Bool(v.HasValue);
        if (v is { } value)
            Value(w, value);
    }

    private static VersionedValue? OptionalValue(ref WireReader r) => r.Bool("has value") ? Value(ref r) : null;

    private static void Config(WireWriter w, ClusterConfig c)
    {
        w.I32(c.ReplicationFactor); w.I32(c.ReadQuorum); w.I32(c.WriteQuorum); w.I32(c.TokensPerNode);
        w.I32(c.KeyBytesMax); w.I32(c.ValueBytesMax); w.I32(c.RequestTimeoutMs); w.I32(c.MembershipRetryMs);
        w.I32(c.HeartbeatIntervalMs); w.I32(c.FailureTimeoutMs); w.I32(c.RemoveAfterMs); w.I32(c.TombstoneGraceMs);
    }

    private static ClusterConfig Config(ref WireReader r)
    {
        var c = new ClusterConfig
        {
            ReplicationFactor = r.I32("replication factor"),
            ReadQuorum = r.I32("read quorum"),
            WriteQuorum = r.I32("write quorum"),
            TokensPerNode = r.I32("tokens per node"),
            KeyBytesMax = r.I32("key size limit"),
            ValueBytesMax = r.I32("value size limit"),
            RequestTimeoutMs = r.I32("request timeout"),
            MembershipRetryMs = r.I32("membership retry"),
            HeartbeatIntervalMs = r.I32("heartbeat interval"),
            FailureTimeoutMs = r.I32("failure timeout"),
            RemoveAfterMs = r.I32("removal delay"),
            TombstoneGraceMs = r.I32("tombstone grace"),
        };
        var errors = c.Validate();
        if (errors.Count > 0)
            throw new ProtocolException("invalid cluster config: " + string.Join("; ", errors));
        return c;
    }

    private static void RingOf(WireWriter w, Ring ring)
    {
        w.I64(ring.Epoch);
        w.I32(ring.Members.Count);
        foreach (var (id, address) in ring.Members)
        {
            Node(w, id);
            w.String(address);
        }
        w.I32(ring.Tokens.Length);
        foreach (var t in ring.Tokens)
        {
            w.U64(t.Position);
            Node(w, t.Owner);
        }
    }

    private static Ring RingOf(ref WireReader r)
    {
        var epoch = r.I64("ring epoch");
        var memberCount = r.Count("ring members", 8);
        var members = ImmutableSortedDictionary.CreateBuilder<NodeId, string>();
        for (var i = 0; i < memberCount; i++)
            members[Node(ref r)] = r.String("member address");
        var tokenCount = r.Count("ring tokens", 12);
        var tokens = ImmutableArray.CreateBuilder<Token>(tokenCount);
        for (var i = 0; i < tokenCount; i++)
            tokens.Add(new Token(r.U64("token position"), Node(ref r)));
        try
        {
            return new Ring(epoch, tokens.MoveToImmutable(), members.ToImmutable());
        }
        catch (ArgumentException e)
        {
            throw new ProtocolException("invalid ring: " + e.Message);
        }
    }

    private static void Members(WireWriter w, IReadOnlyList<MemberStatus> members)
    {
        w.I32(members.Count);
        foreach (var m in members)
        {
            Node(w, m.Node); w.String(m.Address); w.I32(m.Pid); w.Byte((byte)m.State); w.I32(m.Tokens); w.Bool(m.Down);
        }
    }

    private static List<MemberStatus> Members(ref WireReader r)
    {
        var count = r.Count("members", 18);
        var list = new List<MemberStatus>(count);
        for (var i = 0; i < count; i++)
        {
            var node = Node(ref r);
            var address = r.String("member address");
            var pid = r.I32("pid");
            var state = r.Byte("member state");
            if (state is < (byte)MemberState.Joining or > (byte)MemberState.Leaving)
                throw new ProtocolException($"member state must be 1..3, got {state}");
            list.Add(new MemberStatus(node, address, pid, (MemberState)state, r.I32("tokens"), r.Bool("down")));
        }
        return list;
    }
}
