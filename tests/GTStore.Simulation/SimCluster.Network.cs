using GTStore.Core;
using GTStore.Core.Messages;
using GTStore.Protocol;
using Version = GTStore.Core.Version;

namespace GTStore.Simulation;

// The simulated network (delays, drops, duplicates, partitions) and how each message or step is delivered.
public sealed partial class SimCluster
{
    // ---- the network ---------------------------------------------------------------------------

    private long Delay()
    {
        var f = Faults;
        if (f.SlowProbability > 0 && Random.NextDouble() < f.SlowProbability)
            return f.MinDelayMs + Random.Next(Math.Max(1, f.SlowMaxDelayMs));
        return f.MinDelayMs + Random.Next(Math.Max(1, f.MaxDelayMs - f.MinDelayMs + 1));
    }

    private static Message Wire(Message m) => MessageCodec.Decode(MessageCodec.TypeOf(m), MessageCodec.Encode(m));

    private int IncarnationOf(NodeId endpoint) =>
        endpoint == NodeId.Manager ? ManagerIncarnation
        : endpoint.IsNode && Nodes.TryGetValue(endpoint, out var node) ? node.Incarnation
        : 0;

    /// <summary>
    /// Carries one message from <paramref name="from"/> to <paramref name="to"/>: lost across a
    /// partition (now or when it arrives), lost with the drop probability, lost if either end
    /// crashed while it was in flight, else <paramref name="deliver"/> runs after a random delay
    /// (twice, with the duplicate probability).
    /// </summary>
    private void Transmit(NodeId from, NodeId to, Message message, bool duplicable, Action deliver, bool ignoreCrash = false)
    {
        if (!CanTalk(from, to))
        {
            MessagesPartitioned++;
            TraceMessage("cut ", from, to, message);
            return;
        }
        if (Faults.DropProbability > 0 && Random.NextDouble() < Faults.DropProbability)
        {
            MessagesDropped++;
            TraceMessage("drop", from, to, message);
            return;
        }
        var copies = duplicable && Faults.DuplicateProbability > 0 && Random.NextDouble() < Faults.DuplicateProbability ? 2 : 1;
        if (copies == 2)
        {
            MessagesDuplicated++;
            if (message is Forward f)
                DuplicatedForwards.Add(System.Text.Encoding.UTF8.GetString(f.Request.Key));
        }
        var fromIncarnation = IncarnationOf(from);
        var toIncarnation = IncarnationOf(to);
        for (var i = 0; i < copies; i++)
        {
            Schedule(Delay(), () =>
            {
                if (!CanTalk(from, to))
                {
                    MessagesPartitioned++;
                    TraceMessage("cut ", from, to, message);
                    return;
                }
                if (!ignoreCrash && (IncarnationOf(from) != fromIncarnation || IncarnationOf(to) != toIncarnation))
                {
                    MessagesLostInCrashes++;
                    TraceMessage("lost", from, to, message);
                    return;
                }
                MessagesDelivered++;
                TraceMessage(to == NodeId.Manager ? (ManagerAlive ? "recv" : "refused") :
                    to.IsNode && !(Nodes.TryGetValue(to, out var n) && n.Alive) ? "refused" : "recv", from, to, message);
                deliver();
            });
        }
    }

    private void TraceMessage(string what, NodeId from, NodeId to, Message message)
    {
        if (TraceKey is { } key)
        {
            if (Carries(message, key))
            {
                var extra = message is RingUpdate u ? $" -> replicas of {key}: current [{string.Join(",", Replicas(u.Current, key))}]" +
                    (u.Pending is null ? "" : $" pending [{string.Join(",", Replicas(u.Pending, key))}]") : "";
                TraceLine($"{what} {Name(from)}->{Name(to)} {Describe(message)}{extra}");
            }
            return;
        }
        if (TraceEnabled && message is not Heartbeat)
            TraceLine($"{what} {Name(from)}->{Name(to)} {Describe(message)}");
    }

    private NodeId[] Replicas(Ring ring, string key) =>
        ring.PreferenceList(KeyHash.Of(System.Text.Encoding.UTF8.GetBytes(key)), _config.ReplicationFactor);

    private static string Name(NodeId id) => id == ClientSide ? "client" : id.ToString();

    private static bool Carries(Message m, string key)
    {
        var k = System.Text.Encoding.UTF8.GetBytes(key);
        return m switch
        {
            ClientRequest r => r.Key.AsSpan().SequenceEqual(k),
            ReplicaWrite w => w.Key.AsSpan().SequenceEqual(k),
            ReplicaRead r => r.Key.AsSpan().SequenceEqual(k),
            Forward f => f.Request.Key.AsSpan().SequenceEqual(k),
            TransferBatch b => b.Entries.Any(e => e.Key.AsSpan().SequenceEqual(k)),
            SyncEntries s => s.Entries.Any(e => e.Key.AsSpan().SequenceEqual(k)),
            RingUpdate or StartTransfers or TransferTaskDone or LeaveDone => true,
            _ => false,
        };
    }

    /// <summary>A short, readable form of a message for traces.</summary>
    public static string Describe(Message m) => m switch
    {
        ClientRequest r => $"{r.Op} {Text(r.Key)}",
        ClientReply r => $"reply {r.Status} by {r.Coordinator} {r.Value?.Version.ToString() ?? ""} {r.Error}",
        ReplicaWrite w => $"ReplicaWrite op {w.OpId} from {w.From} {Text(w.Key)} {w.Value.Version}{(w.HintFor.IsNode ? $" hint for {w.HintFor}" : "")}",
        ReplicaWriteAck a => $"ReplicaWriteAck op {a.OpId} from {a.From} ok {a.Ok} {a.Error}",
        ReplicaRead r => $"ReplicaRead op {r.OpId} from {r.From} {Text(r.Key)}{(r.HintFor.IsNode ? $" hint for {r.HintFor}" : "")}",
        ReplicaReadReply r => $"ReplicaReadReply op {r.OpId} from {r.From} ok {r.Ok} {r.Value?.Version.ToString() ?? "none"} {r.Error}",
        Forward f => $"Forward op {f.OpId} from {f.From} {f.Request.Op} {Text(f.Request.Key)}",
        ForwardReply f => $"ForwardReply op {f.OpId} from {f.From} {f.Reply.Status} {f.Reply.Error}",
        RingUpdate u => $"RingUpdate current {u.Current.Epoch} [{string.Join(",", u.Current.Members.Keys)}] pending {u.Pending?.Epoch.ToString() ?? "-"}",
        TransferBatch b => $"TransferBatch {b.TransferId:x}/{b.TaskIndex} seq {b.Sequence} from {b.From} {b.Entries.Count} entries last {b.Last}",
        SyncParts s => $"SyncParts from {s.From} {s.Range} {s.Parts.Count} parts",
        SyncEntries s => $"SyncEntries from {s.From} {s.Range} {s.Parts.Count} parts {s.Entries.Count} entries final {s.Final}",
        StartTransfers t => $"StartTransfers {t.TransferId:x} [{string.Join(", ", t.Tasks.Select(x => $"{x.Index}: {x.Task.Source}->{x.Task.Destination} {x.Task.Range}"))}]",
        TransferTaskDone d => $"TransferTaskDone {d.TransferId:x}/{d.TaskIndex} from {d.From}",
        TransferBatchAck a => $"TransferBatchAck {a.TransferId:x}/{a.TaskIndex} seq {a.Sequence} from {a.From}",
        _ => m.GetType().Name,
    };

    /// <summary>The hints a node holds (read by reflection: diagnostics only).</summary>
    public static List<(NodeId Owner, string Key, Version Version)> HintsOf(NodeMachine machine)
    {
        var field = typeof(NodeMachine).GetField("_hints", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance);
        var result = new List<(NodeId, string, Version)>();
        if (field?.GetValue(machine) is not Dictionary<NodeId, Dictionary<string, (byte[] Key, VersionedValue Value)>> hints)
            return result;
        foreach (var (owner, byKey) in hints)
        {
            foreach (var (key, value) in byKey.Values)
                result.Add((owner, Text(key), value.Version));
        }
        return result;
    }

    private static string Text(byte[] key) => System.Text.Encoding.UTF8.GetString(key);

    // ---- steps -----------------------------------------------------------------------------------

    private void TickAll()
    {
        if (ManagerAlive)
            StepManager(m => m.Tick(NowMs));
        foreach (var node in Nodes.Values.Where(n => n.Alive).ToList())
            StepNode(node, m => m.Tick(NowMs));
        Schedule(TickIntervalMs, TickAll);
    }

    /// <summary>One input to the manager, then what its host does: persist, then send.</summary>
    private void StepManager(Action<ManagerMachine> input)
    {
        try
        {
            input(Manager);
        }
        catch (Exception e)
        {
            throw new SimulationException(Seed, $"the manager threw at {NowMs} ms: {e}");
        }
        if (CrashManagerAtNextStep)
        {
            KillManager("manager crashed mid-step (before persisting)");
            return;
        }
        if (_managerOut.Persist is { } snapshot)
            LastSnapshot = (ManagerSnapshot)Wire(snapshot);
        var ringState = (Manager.Current.Epoch, Manager.Pending?.Epoch ?? 0);
        if (ringState != _loggedRingState)
        {
            _loggedRingState = ringState;
            Log(Manager.Pending is { } p
                ? $"manager: epoch {Manager.Current.Epoch}, change to epoch {p.Epoch} [{string.Join(", ", p.Members.Keys)}] in progress"
                : $"manager: epoch {Manager.Current.Epoch} committed [{string.Join(", ", Manager.Current.Members.Keys)}]");
        }
        Route(NodeId.Manager, _managerOut);
    }

    /// <summary>One input to a node, then what NodeHost.AfterStep does: sync the engine, then send.</summary>
    private void StepNode(SimNode node, Action<NodeMachine> input)
    {
        if (!node.Alive)
            return;
        try
        {
            input(node.Machine);
        }
        catch (Exception e)
        {
            throw new SimulationException(Seed, $"{node.Name} threw at {NowMs} ms: {e}");
        }
        if (node.CrashAtNextStep && (node.Disk.UnflushedCount > 0 || NowMs >= node.CrashDeadlineMs))
        {
            Kill(node, $"crashed mid-step (before syncing, {node.Outbox.Sends.Count + node.Outbox.Replies.Count} effects unsent)");
            return;
        }
        var leaving = node.Outbox.Exit;
        if (SyncDelayMs <= 0)
        {
            node.Disk.Flush();
            Route(node.Id, node.Outbox.Sends, node.Outbox.Replies);
        }
        else
        {
            // Group commit off the loop (NodeHost.AfterStep): the effects wait for the next sync,
            // which covers every write made so far; the machine meanwhile takes further inputs.
            node.PendingEffects.Add(([.. node.Outbox.Sends], [.. node.Outbox.Replies]));
            if (!node.CommitScheduled)
            {
                node.CommitScheduled = true;
                var incarnation = node.Incarnation;
                Schedule(SyncDelayMs, () =>
                {
                    if (node.Incarnation == incarnation)
                        Commit(node);
                });
            }
        }
        node.Outbox.Clear();
        if (leaving && node.LeftAtMs < 0)
        {
            node.LeftAtMs = NowMs;
            Log($"{node.Name} left; draining {node.Machine.OperationsInFlight} requests in flight");
        }
        // Like gtstore node after Left: answer what is in flight (bounded), then exit.
        if (node.LeftAtMs >= 0 && (node.Machine.IsDrained || NowMs - node.LeftAtMs >= DrainMs))
        {
            Commit(node); // The committer finishes before the process exits.
            node.Alive = false;
            node.Left = true;
            Log($"{node.Name} exits");
        }
    }

    /// <summary>A sync: every write so far becomes durable, then the effects waiting for it leave.</summary>
    private void Commit(SimNode node)
    {
        node.CommitScheduled = false;
        node.Disk.Flush();
        foreach (var (sends, replies) in node.PendingEffects)
            Route(node.Id, sends, replies);
        node.PendingEffects.Clear();
    }

    /// <summary>
    /// Time a node's sync takes (group commit off the loop). 0: the host syncs after every step and
    /// sends at once. Above 0, several steps' writes and effects may be waiting when a crash
    /// comes: the writes are lost and the effects never leave.
    /// </summary>
    public int SyncDelayMs { get; set; }

    /// <summary>How long a node that left keeps answering requests in flight (gtstore node: 5 s).</summary>
    public const int DrainMs = 5_000;

    private void Route(NodeId from, Outbox outbox)
    {
        Route(from, outbox.Sends, outbox.Replies);
        outbox.Clear();
    }

    private void Route(NodeId from, List<(NodeId To, Message Message)> sends, List<(long Handle, Message Reply)> replies)
    {
        foreach (var (handle, reply) in replies)
        {
            var wire = Wire(reply);
            var to = _requester.GetValueOrDefault(handle, ClientSide);
            Transmit(from, to, wire, duplicable: false, () => Answer(handle, wire));
        }
        foreach (var (to, message) in sends)
            SendMessage(from, to, Wire(message));
    }

    private void SendMessage(NodeId from, NodeId to, Message message)
    {
        Transmit(from, to, message, duplicable: true, () =>
        {
            if (to == NodeId.Manager)
            {
                if (ManagerAlive)
                    StepManager(m => m.OnMessage(NowMs, message));
                return;
            }
            if (!Nodes.TryGetValue(to, out var node) || !node.Alive)
            {
                // Connection refused: the sender learns the peer is unreachable.
                if (Nodes.TryGetValue(from, out var sender) && sender.Alive)
                    StepNode(sender, m => m.OnUnreachable(NowMs, to, message));
                return;
            }
            StepNode(node, m => m.OnMessage(NowMs, message));
        });
    }
}
