using System.Text;
using GTStore.Core;
using GTStore.Core.Messages;
using Version = GTStore.Core.Version;

namespace GTStore.Simulation;

/// <summary>What happened to one key (one write) of the workload.</summary>
public sealed class KeyRecord(string key, string value)
{
    public string Key { get; } = key;
    public string Value { get; } = value;
    public byte[] KeyBytes { get; } = Encoding.UTF8.GetBytes(key);
    public ulong Hash { get; } = KeyHash.Of(Encoding.UTF8.GetBytes(key));
    /// <summary>Null while the write is in flight.</summary>
    public ReplyStatus? Outcome { get; set; }
    public string? Error { get; set; }
    public Version? Acknowledged { get; set; }
    /// <summary>The highest version any read returned.</summary>
    public Version? MaxRead { get; set; }
    public long SentAtMs { get; set; }
    public long AnsweredAtMs { get; set; }
    public NodeId Forwarder { get; set; }

    /// <summary>A delete of the key was sent (the workload deletes only keys whose write was acknowledged, at most once).</summary>
    public bool DeleteSent { get; set; }
    /// <summary>The delete's outcome; null while in flight.</summary>
    public ReplyStatus? DeleteOutcome { get; set; }
    /// <summary>The tombstone's version, once the delete was acknowledged.</summary>
    public Version? DeleteAcknowledged { get; set; }
    public long DeleteAnsweredAtMs { get; set; }
    /// <summary>The key may hold no value now: its delete was acknowledged or may have been applied.</summary>
    public bool MayBeDeleted => DeleteSent && DeleteOutcome != ReplyStatus.Failed;

    /// <summary>The highest version known to exist: acknowledged or read.</summary>
    public Version? Known => Acknowledged is { } a && MaxRead is { } r ? Version.Max(a, r) : Acknowledged ?? MaxRead;
}

/// <summary>Settings of one fault run; the seed picks the rest.</summary>
public sealed record FaultScenarioOptions
{
    public int Clients { get; init; } = 12;
    /// <summary>Virtual time during which clients write and faults happen.</summary>
    public int FaultPhaseMs { get; init; } = 30_000;
    public double ReadFraction { get; init; } = 0.25;
    public int MaxThinkMs { get; init; } = 40;
    /// <summary>A client gives up on a request after this long and counts a write as unknown.</summary>
    public int ClientTimeoutMs { get; init; } = 6_000;
    public int SettleMaxMs { get; init; } = 120_000;
    public int ConvergeMaxMs { get; init; } = 120_000;
    public bool ManagerCrashes { get; init; } = true;
    public bool NodeCrashes { get; init; } = true;
    public bool Partitions { get; init; } = true;
    public bool JoinAndLeave { get; init; } = true;
    public bool MessageFaults { get; init; } = true;
    /// <summary>
    /// The first crashed node stays down longer than <see cref="ClusterConfig.RemoveAfterMs"/>
    /// (shortened to <see cref="RemoveAfterMs"/>): the manager removes it and re-replicates its
    /// ranges, and when it comes back it must rejoin as a new node with its stale data discarded.
    /// </summary>
    public bool PermanentFailure { get; init; }
    public int RemoveAfterMs { get; init; } = 6_000;
    /// <summary>Share of client operations that delete a key whose write was acknowledged.</summary>
    public double DeleteFraction { get; init; } = 0.1;
    /// <summary>
    /// <see cref="ClusterConfig.TombstoneGraceMs"/> for the run: the smallest the default timeouts
    /// allow, so tombstones are purged during the faults too.
    /// </summary>
    public int TombstoneGraceMs { get; init; } = new ClusterConfig().TombstoneGraceMinMs;
}

/// <summary>
/// One seeded run of a whole cluster under faults (issue 3, item 7): N=3, R=W=2, 5 to 7 nodes;
/// clients write one unique key per write while messages are dropped, duplicated and reordered,
/// nodes are partitioned and healed, nodes and the manager crash and restart, and a node joins
/// and another leaves. After healing and settling it checks: every acknowledged write reads
/// back; replicas converge; each key is on exactly the N nodes of its preference list; no read
/// of the settled cluster returns a version older than one acknowledged or read before it; no
/// write answered Failed ("nothing was written") became visible. Reads during the faults that go
/// backwards are counted, not failed: sloppy quorum does not promise read-your-writes.
/// </summary>
public sealed partial class FaultScenario
{
    private readonly SimCluster _sim;
    private readonly FaultScenarioOptions _options;
    private readonly Action<string> _output;
    private readonly ClusterConfig _config;
    private readonly List<KeyRecord> _keys = [];
    private readonly List<KeyRecord> _written = [];
    private readonly List<string> _readRegressions = [];
    private readonly List<string> _settledReadRegressions = [];
    private readonly List<string> _failedVisibleByDuplicate = [];
    private readonly List<int> _openPartitions = [];
    private bool _writing;
    private int _clientsBusy;
    private int _adminBusy;
    private bool _final;
    private string _notConverged = "";

    public FaultScenario(int seed, Action<string> output, FaultScenarioOptions? options = null)
    {
        Seed = seed;
        _output = output;
        _options = options ?? new FaultScenarioOptions();
        _config = new ClusterConfig { ReplicationFactor = 3, ReadQuorum = 2, WriteQuorum = 2, TokensPerNode = 3, TombstoneGraceMs = _options.TombstoneGraceMs };
        if (_options.PermanentFailure)
            _config = _config with { RemoveAfterMs = _options.RemoveAfterMs };
        _sim = new SimCluster(seed, _config);
    }

    public int Seed { get; }

    public SimCluster Sim => _sim;

    public IReadOnlyList<KeyRecord> Keys => _keys;

    // Counts for the report.
    public int Acked => _keys.Count(k => k.Outcome == ReplyStatus.Ok);
    public int Unknown => _keys.Count(k => k.Outcome == ReplyStatus.Unknown);
    public int Failed => _keys.Count(k => k.Outcome == ReplyStatus.Failed);
    public int Lost { get; private set; }
    public int Reads { get; private set; }
    public int ReadsOk { get; private set; }
    public int ReadsFailed { get; private set; }
    public int InitFallbacks { get; private set; }
    /// <summary>Requests answered "moved" by a forwarder that had left (then resent elsewhere).</summary>
    public int Moved { get; private set; }

    private int N => _config.ReplicationFactor;

    private Random Random => _sim.Random;

    public void Run()
    {
        var initialNodes = 5 + Random.Next(2);
        for (var i = 0; i < initialNodes; i++)
            _sim.StartNode();
        _sim.RunUntil(() => Settled() is null && _sim.Manager.Current.NodeCount == initialNodes, 60_000, $"{initialNodes} nodes up");
        _sim.Log($"{initialNodes} nodes up, epoch {_sim.Manager.Current.Epoch}");

        if (_options.MessageFaults)
        {
            _sim.Faults = new NetworkFaults
            {
                DropProbability = 0.005 + Random.NextDouble() * 0.025,
                DuplicateProbability = 0.005 + Random.NextDouble() * 0.025,
                MinDelayMs = 1,
                MaxDelayMs = 5 + Random.Next(11),
                SlowProbability = 0.03 + Random.NextDouble() * 0.05,
                SlowMaxDelayMs = 100 + Random.Next(500),
            };
        }
        // Nodes sync off the loop (NodeHost group commit): effects wait 0..3 ms for the sync.
        _sim.SyncDelayMs = Random.Next(4);
        _sim.Log($"network: {_sim.Faults}; sync takes {_sim.SyncDelayMs} ms");
        ScheduleFaults();

        _writing = true;
        for (var c = 0; c < _options.Clients; c++)
        {
            var client = new Client(c);
            _clientsBusy++;
            _sim.Schedule(Random.Next(200), () => Next(client));
        }
        _sim.RunFor(_options.FaultPhaseMs);

        // Heal: no more faults, every process back, clients stop writing.
        _writing = false;
        _sim.Faults = NetworkFaults.None;
        _sim.HealPartitions();
        _openPartitions.Clear();
        if (!_sim.ManagerAlive)
            _sim.RestartManager();
        foreach (var node in _sim.Nodes.Values.ToList())
        {
            node.CrashAtNextStep = false;
            if (node.Crashed && !node.Left)
                _sim.RestartNode(node.Id);
        }
        _sim.Log("faults stopped; everything healed and restarted");
        _sim.RunUntilPolled(() => _clientsBusy == 0 && _adminBusy == 0 && Settled() is null, _options.SettleMaxMs,
            () => $"cluster settles after the faults (last: {Settled()}, clients busy {_clientsBusy}, admin busy {_adminBusy})");
        _sim.Log($"settled at epoch {_sim.Manager.Current.Epoch} with {_sim.Manager.Current.NodeCount} nodes");

        // Hints handed back and anti-entropy: bounded.
        var start = _sim.NowMs;
        var converged = false;
        var why = "";
        while (_sim.NowMs - start < _options.ConvergeMaxMs)
        {
            _sim.RunFor(1_000);
            why = Settled() ?? PlacementProblems(1).FirstOrDefault() ?? (HintsHeld() > 0 ? $"{HintsHeld()} hints held" : "");
            if (why == "" && StaleTombstones(1).FirstOrDefault() is { } stale)
                why = stale;
            if (why == "")
            {
                converged = true;
                break;
            }
        }
        _convergenceJudgedAtMs = _sim.NowMs;
        _sim.Log(converged ? $"converged after {_sim.NowMs - start} ms" : $"not converged after {_options.ConvergeMaxMs} ms: {why}");
        ConvergedAfterMs = converged ? _sim.NowMs - start : -1;
        _notConverged = why;
    }

    public long ConvergedAfterMs { get; private set; }

    /// <summary>
    /// When convergence was last judged: the final check judges stale tombstones at that time, since
    /// one that grew older than the grace during the final reads was not yet due for a purge.
    /// </summary>
    private long _convergenceJudgedAtMs = -1;

    public long HintsHeld() => _sim.Nodes.Values.Where(n => n.Alive).Sum(n => n.Machine.HintCount);

    /// <summary>Null when the cluster is settled, else why not.</summary>
    public string? Settled()
    {
        if (!_sim.ManagerAlive)
            return "manager down";
        var manager = _sim.Manager;
        if (manager.Pending is not null)
            return $"membership change to epoch {manager.Pending.Epoch} in progress";
        var status = manager.Status();
        if (status.Members.FirstOrDefault(m => m.State != MemberState.Up || m.Down) is { } odd)
            return $"{odd.Node} is {odd.State}{(odd.Down ? " and down" : "")}";
        var alive = _sim.Nodes.Values.Where(n => n.Alive).ToList();
        if (alive.FirstOrDefault(n => !n.Joined) is { } joining)
            return $"{joining.Name} has not joined yet";
        var members = status.Members.Select(m => m.Node).Order().ToList();
        var running = alive.Select(n => n.Id).Order().ToList();
        if (!members.SequenceEqual(running))
            return $"members [{string.Join(", ", members)}] but running [{string.Join(", ", running)}]";
        if (alive.FirstOrDefault(n => n.Machine.Current.Epoch != manager.Current.Epoch || n.Machine.Pending is not null) is { } behind)
            return $"{behind.Id} is at epoch {behind.Machine.Current.Epoch}{(behind.Machine.Pending is null ? "" : " with a pending ring")}, manager at {manager.Current.Epoch}";
        return null;
    }

    // ---- faults ------------------------------------------------------------------------------

    private void At(double fromSeconds, double toSeconds, Action action)
    {
        var at = (long)((fromSeconds + Random.NextDouble() * (toSeconds - fromSeconds)) * 1000);
        _sim.Schedule(at, () =>
        {
            if (_writing)
                action();
        });
    }

    private long Seconds(double from, double to) => (long)((from + Random.NextDouble() * (to - from)) * 1000);

    private void ScheduleFaults()
    {
        var f = _options.FaultPhaseMs / 1000.0 / 30; // Scale the plan below (written for 30 s).
        if (_options.Partitions)
        {
            At(1 * f, 6 * f, () => PartitionSome(Random.Next(1, 3), Seconds(2, 7)));
            At(12 * f, 22 * f, () => PartitionSome(2, Seconds(2, 6)));
        }
        if (_options.NodeCrashes)
        {
            At(3 * f, 10 * f, () => CrashSomeNode(_options.PermanentFailure
                ? _options.RemoveAfterMs + _config.FailureTimeoutMs + Seconds(2, 8)
                : Seconds(1, 8)));
            At(15 * f, 24 * f, () => CrashSomeNode(Seconds(1, 6)));
        }
        if (_options.ManagerCrashes)
        {
            At(5 * f, 15 * f, () => CrashTheManager(Seconds(1, 5)));
            At(18 * f, 26 * f, () => CrashTheManager(Seconds(0.5, 3)));
        }
        if (_options.JoinAndLeave)
        {
            At(6 * f, 16 * f, () =>
            {
                _sim.Log("a new node starts");
                _sim.StartNode();
            });
            At(10 * f, 20 * f, LeaveSomeNode);
        }
    }

    private List<SimNode> Running() =>
        _sim.Nodes.Values.Where(n => n.Alive && n.Joined && !n.CrashAtNextStep).OrderBy(n => n.Id).ToList();

    private void PartitionSome(int count, long healAfterMs)
    {
        var candidates = Running().Where(n => !_sim.IsPartitioned(n.Id)).ToList();
        if (candidates.Count < count + N)
            return;
        var chosen = candidates.OrderBy(_ => Random.Next()).Take(count).Select(n => n.Id).ToList();
        // Two nodes: together on one side, or each alone.
        var groups = count == 2 && Random.Next(2) == 0
            ? chosen.Select(id => _sim.Partition([id])).ToList()
            : [_sim.Partition(chosen)];
        _openPartitions.AddRange(groups);
        _sim.Schedule(healAfterMs, () =>
        {
            foreach (var g in groups)
            {
                if (_openPartitions.Remove(g))
                    _sim.Heal(g);
            }
        });
    }

    private void CrashSomeNode(long restartAfterMs)
    {
        var candidates = Running();
        if (candidates.Count == 0)
            return;
        var node = candidates[Random.Next(candidates.Count)];
        var midStep = Random.Next(2) == 0;
        _sim.CrashNode(node.Id, midStep);
        _sim.Schedule(restartAfterMs, () =>
        {
            node.CrashAtNextStep = false;
            if (node.Crashed && !node.Left && _writing)
                _sim.RestartNode(node.Id);
        });
    }

    private void CrashTheManager(long restartAfterMs)
    {
        if (!_sim.ManagerAlive || _sim.CrashManagerAtNextStep)
            return;
        _sim.CrashManager(midStep: Random.Next(2) == 0);
        _sim.Schedule(restartAfterMs, () =>
        {
            if (!_sim.ManagerAlive && _writing)
                _sim.RestartManager();
        });
    }

    private void LeaveSomeNode()
    {
        var members = _sim.Manager.Current.Members.Keys.ToList();
        if (members.Count <= N + 1)
            return;
        var node = members[Random.Next(members.Count)];
        _sim.Log($"admin: {node} leaves");
        _adminBusy++;
        RequestLeave(node, 1);
    }

    /// <summary>Asks the manager for the leave until it is done or refused for good, as an admin would.</summary>
    private void RequestLeave(NodeId node, int attempt)
    {
        _sim.ManagerRequest(new AdminLeave(node), reply =>
        {
            switch (reply)
            {
                case OkReply:
                    _sim.Log($"admin: leave of {node} done (attempt {attempt})");
                    _adminBusy--;
                    break;
                case ErrorReply e when e.Message.Contains("not a member", StringComparison.Ordinal) && attempt > 1:
                    // An earlier attempt completed but its answer was lost.
                    _sim.Log($"admin: {node} is gone (attempt {attempt}): {e.Message}");
                    _adminBusy--;
                    break;
                case ErrorReply e when e.Message.Contains("cannot leave", StringComparison.Ordinal) || e.Message.Contains("not a member", StringComparison.Ordinal):
                    _sim.Log($"admin: leave of {node} refused: {e.Message}");
                    _adminBusy--;
                    break;
                case ErrorReply e:
                    _sim.Log($"admin: leave of {node} attempt {attempt}: {e.Message}; retrying");
                    _sim.Schedule(1_000, () => RequestLeave(node, attempt + 1));
                    break;
            }
        }, timeoutMs: 15_000);
    }

    // ---- the workload ----------------------------------------------------------------------------

    private sealed class Client(int index)
    {
        public int Index { get; } = index;
        public NodeId Forwarder { get; set; } = NodeId.None;
        public int Sequence { get; set; }
    }

    private void Next(Client c)
    {
        if (!_writing)
        {
            _clientsBusy--;
            return;
        }
        if (!c.Forwarder.IsNode)
        {
            Init(c, () => Think(c));
            return;
        }
        var dice = Random.NextDouble();
        if (_written.Count > 0 && dice < _options.ReadFraction)
            Read(c, _written[Random.Next(_written.Count)]);
        else if (_deletable.Count > 0 && dice < _options.ReadFraction + _options.DeleteFraction)
            Delete(c);
        else
            Write(c);
    }

    private void Think(Client c) => _sim.Schedule(Random.Next(_options.MaxThinkMs + 1), () => Next(c));

    /// <summary>Asks the manager for a forwarder; if it cannot be reached, falls back to a node it knows (the cluster directory).</summary>
    private void Init(Client c, Action then)
    {
        _sim.ManagerRequest(new ClientInitRequest(), reply =>
        {
            if (reply is ClientInitReply ok)
            {
                c.Forwarder = ok.Forwarder;
            }
            else
            {
                var known = _sim.Nodes.Values.Where(n => !n.Left && n.Id.IsNode).Select(n => n.Id).Order().ToList();
                if (known.Count > 0)
                {
                    c.Forwarder = known[Random.Next(known.Count)];
                    InitFallbacks++;
                }
            }
            then();
        }, timeoutMs: 2_000);
    }

    /// <summary>One request with the client's timeout; <paramref name="onReply"/> gets exactly one answer.</summary>
    private void Send(Client c, ClientRequest request, Action<ClientReply> onReply)
    {
        var answered = false;
        _sim.ClientRequest(c.Forwarder, request, reply =>
        {
            if (answered)
                return;
            answered = true;
            onReply(reply);
        });
        _sim.Schedule(_options.ClientTimeoutMs, () =>
        {
            if (answered)
                return;
            answered = true;
            onReply(new ClientReply(ReplyStatus.Unknown, NodeId.None, null, "client timed out"));
        });
    }

    private void Write(Client c)
    {
        var seq = c.Sequence++;
        var record = new KeyRecord($"c{c.Index}-k{seq}", $"value of c{c.Index}-k{seq} in run {Seed}")
        {
            SentAtMs = _sim.NowMs,
            Forwarder = c.Forwarder,
        };
        _keys.Add(record);
        _written.Add(record);
        SendWrite(c, record);
    }

    private void SendWrite(Client c, KeyRecord record)
    {
        Send(c, new ClientRequest(ClientOp.Put, record.KeyBytes, Encoding.UTF8.GetBytes(record.Value)), reply =>
        {
            if (reply.Status == ReplyStatus.Moved)
            {
                // The forwarder has left and did nothing: a new forwarder, the same write.
                Moved++;
                c.Forwarder = NodeId.None;
                _sim.Schedule(Random.Next(_options.MaxThinkMs + 1), () => Init(c, () => SendWrite(c, record)));
                return;
            }
            record.Outcome = reply.Status;
            record.Error = reply.Error;
            record.AnsweredAtMs = _sim.NowMs;
            switch (reply.Status)
            {
                case ReplyStatus.Ok:
                    record.Acknowledged = reply.Value?.Version
                        ?? throw new SimulationException(Seed, $"write of {record.Key} acknowledged without a version");
                    _deletable.Add(record);
                    break;
                case ReplyStatus.Invalid:
                    throw new SimulationException(Seed, $"write of {record.Key} rejected as invalid: {reply.Error}");
                default:
                    c.Forwarder = NodeId.None; // Ask for a (maybe) better forwarder.
                    break;
            }
            Think(c);
        });
    }

    private void Read(Client c, KeyRecord record)
    {
        var knownBefore = record.Known;
        Reads++;
        Send(c, new ClientRequest(ClientOp.Get, record.KeyBytes, null), reply =>
        {
            if (reply.Status == ReplyStatus.Moved)
            {
                Moved++;
                c.Forwarder = NodeId.None;
                Think(c);
                return;
            }
            CheckRead(record, knownBefore, reply, _readRegressions);
            if (reply.Status is not (ReplyStatus.Ok or ReplyStatus.NotFound))
                c.Forwarder = NodeId.None;
            Think(c);
        });
    }

    /// <summary>Versions never go backwards: a read returns at least the version known when it was sent.</summary>
    private void CheckRead(KeyRecord record, Version? knownBefore, ClientReply reply, List<string> regressions)
    {
        switch (reply.Status)
        {
            case ReplyStatus.Ok:
                ReadsOk += _final ? 0 : 1;
                var got = reply.Value!.Value;
                if (got.Value is null || Encoding.UTF8.GetString(got.Value) != record.Value)
                    throw new SimulationException(Seed, $"read of {record.Key} returned a value that was never written: {Encoding.UTF8.GetString(got.Value ?? [])}");
                if (!_final && record.DeleteAcknowledged is { } deletedAt && got.Version < deletedAt)
                    _deletedReadBack++;
                if (knownBefore is { } known && got.Version < known)
                    regressions.Add($"{_sim.NowMs} ms: read of {record.Key} via {reply.Coordinator} returned {got.Version}, older than {known} known before the read");
                if (record.MaxRead is not { } max || got.Version > max)
                    record.MaxRead = got.Version;
                break;
            case ReplyStatus.NotFound:
                ReadsOk += _final ? 0 : 1;
                if (knownBefore is { } k && !record.DeleteSent)
                    regressions.Add($"{_sim.NowMs} ms: read of {record.Key} via {reply.Coordinator} found nothing, though {k} was known before the read ({record.Outcome})");
                break;
            default:
                ReadsFailed += _final ? 0 : 1;
                break;
        }
    }
}
