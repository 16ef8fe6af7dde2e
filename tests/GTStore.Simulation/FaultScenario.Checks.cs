using GTStore.Core.Messages;

namespace GTStore.Simulation;

// The checkers of a fault run: no acknowledged write lost, convergence, exactly N copies, no read going backwards.
public sealed partial class FaultScenario
{
    // ---- checks --------------------------------------------------------------------------------

    /// <summary>
    /// Convergence and placement, from the engines of the running nodes: a key that exists
    /// anywhere is on exactly the N nodes of its preference list, all with the same version.
    /// An acknowledged key must exist. Returns at most <paramref name="max"/> problems.
    /// </summary>
    public List<string> PlacementProblems(int max)
    {
        var problems = new List<string>();
        var ring = _sim.Manager.Current;
        var running = _sim.Nodes.Values.Where(n => n.Alive).ToList();
        foreach (var k in _keys)
        {
            if (problems.Count >= max)
                break;
            var expected = ring.PreferenceList(k.Hash, N).Order().ToList();
            var holders = running.Select(n => (n.Id, Value: n.Disk.Get(k.Hash, k.KeyBytes)))
                .Where(h => h.Value is not null).OrderBy(h => h.Id).ToList();
            if (holders.Count == 0)
            {
                if (k.Outcome == ReplyStatus.Ok && !k.MayBeDeleted)
                    problems.Add($"{k.Key} (acknowledged {k.Acknowledged}) is on no node; its preference list is [{string.Join(", ", expected)}]");
                continue;
            }
            var ids = holders.Select(h => h.Id).ToList();
            var versions = holders.Select(h => h.Value!.Value.Version).Distinct().ToList();
            if (!ids.SequenceEqual(expected) || versions.Count != 1)
            {
                problems.Add($"{k.Key} ({k.Outcome}) is on [{string.Join(", ", holders.Select(h => $"{h.Id}@{h.Value!.Value.Version}"))}], " +
                             $"expected the same version on exactly [{string.Join(", ", expected)}]");
            }
        }
        return problems;
    }

    /// <summary>Runs every check and throws a <see cref="SimulationException"/> naming the seed if one fails.</summary>
    public void Check()
    {
        var failures = new List<string>();
        if (ConvergedAfterMs < 0)
        {
            var hinted = _sim.Nodes.Values.Where(n => n.Alive && n.Machine.HintCount > 0)
                .SelectMany(n => SimCluster.HintsOf(n.Machine).Select(h => $"{n.Id} holds {h.Key}@{h.Version} for {h.Owner}"));
            var hints = hinted.Take(10).ToList();
            failures.Add($"did not converge within {_options.ConvergeMaxMs} ms after settling: {_notConverged}" +
                         (hints.Count > 0 ? $"; hints never handed back: {string.Join("; ", hints)}" : "") +
                         $"; members now [{string.Join(", ", _sim.Manager.Current.Members.Keys)}]");
        }

        // (b), (c): convergence and placement.
        var placement = PlacementProblems(int.MaxValue);
        if (placement.Count > 0)
            failures.Add($"{placement.Count} keys not converged on exactly their N replicas, e.g. {string.Join("; ", placement.Take(5))}");

        // (a), (d), (e): read every key back through ordinary clients.
        _final = true;
        var finalReads = new Dictionary<KeyRecord, ClientReply>();
        var readers = Enumerable.Range(0, 4).Select(i => new Client(1000 + i)).ToList();
        var readersReady = 0;
        foreach (var r in readers)
        {
            _sim.ManagerRequest(new ClientInitRequest(), reply =>
            {
                r.Forwarder = reply is ClientInitReply ok ? ok.Forwarder
                    : throw new SimulationException(Seed, $"client init failed after settling: {((ErrorReply)reply).Message}");
                readersReady++;
            }, timeoutMs: 5_000);
        }
        _sim.RunUntil(() => readersReady == readers.Count, 10_000, "readers initialised");
        var pending = 0;
        for (var i = 0; i < _keys.Count; i++)
        {
            var record = _keys[i];
            var reader = readers[i % readers.Count];
            var knownBefore = record.Known;
            pending++;
            _sim.Schedule(i / 50, () => Send(reader, new ClientRequest(ClientOp.Get, record.KeyBytes, null), reply =>
            {
                pending--;
                finalReads[record] = reply;
                CheckRead(record, knownBefore, reply, _settledReadRegressions);
            }));
        }
        _sim.RunUntil(() => pending == 0, 120_000, "final reads answered");

        var lost = new List<string>();
        var failedVisible = new List<string>();
        var unanswered = new List<string>();
        var resurrected = new List<string>();
        foreach (var (record, reply) in finalReads)
        {
            if (reply.Status is not (ReplyStatus.Ok or ReplyStatus.NotFound))
            {
                unanswered.Add($"{record.Key}: {reply.Status} {reply.Error}");
                continue;
            }
            if (record.DeleteAcknowledged is { } deleted && reply.Status == ReplyStatus.Ok)
            {
                var what = $"{record.Key} (deleted at {deleted}, acknowledged at {record.DeleteAnsweredAtMs} ms) reads {reply.Value?.Version}";
                // A duplicated Forward runs the put a second time, maybe after the delete (a newer version).
                if (reply.Value!.Value.Version > deleted && _sim.DuplicatedForwards.Contains(record.Key))
                    _failedVisibleByDuplicate.Add(what);
                else
                    resurrected.Add(what);
            }
            if (record.Outcome == ReplyStatus.Ok && !record.MayBeDeleted && reply.Status != ReplyStatus.Ok)
                lost.Add($"{record.Key} (acknowledged {record.Acknowledged} at {record.AnsweredAtMs} ms via {record.Forwarder}): {reply.Status}");
            if (record.Outcome == ReplyStatus.Failed && reply.Status == ReplyStatus.Ok)
            {
                var what = $"{record.Key} (answered Failed at {record.AnsweredAtMs} ms: {record.Error}) reads {reply.Value?.Version}";
                // A duplicated Forward runs the write a second time, after the first copy was refused.
                if (_sim.DuplicatedForwards.Contains(record.Key))
                    _failedVisibleByDuplicate.Add(what);
                else
                    failedVisible.Add(what);
            }
        }
        Lost = lost.Count;
        if (unanswered.Count > 0)
            failures.Add($"{unanswered.Count} final reads failed on a healed cluster, e.g. {string.Join("; ", unanswered.Take(5))}");
        if (resurrected.Count > 0)
            failures.Add($"{resurrected.Count} deleted keys came back, e.g. {string.Join("; ", resurrected.Take(5))}");
        var staleTombstones = StaleTombstones(int.MaxValue, _convergenceJudgedAtMs < 0 ? null : _convergenceJudgedAtMs);
        if (staleTombstones.Count > 0)
            failures.Add($"{staleTombstones.Count} tombstones older than the grace were never purged, e.g. {string.Join("; ", staleTombstones.Take(5))}");
        if (lost.Count > 0)
            failures.Add($"{lost.Count} acknowledged writes lost, e.g. {string.Join("; ", lost.Take(5))}");
        if (_settledReadRegressions.Count > 0)
            failures.Add($"{_settledReadRegressions.Count} reads on the settled cluster went backwards, e.g. {string.Join("; ", _settledReadRegressions.Take(5))}");
        if (failedVisible.Count > 0)
            failures.Add($"{failedVisible.Count} writes answered Failed (\"nothing was written\") are visible, e.g. {string.Join("; ", failedVisible.Take(5))}");
        // Reads during the faults may go backwards by design: a sloppy write acknowledged by a
        // stand-in's hint need not be among the R replicas a later read asks (Dynamo gives no
        // read-your-writes under sloppy quorum). They are reported, not failed.

        Report();
        if (failures.Count > 0)
            throw new SimulationException(Seed, string.Join("\n", failures));
    }

    /// <summary>An error message without node names and numbers, to group by.</summary>
    private static string Reason(string? error) =>
        error is null ? "(none)" : System.Text.RegularExpressions.Regex.Replace(error, @"server\d+|\d+", "#");

    public void Report()
    {
        _output($"seed {Seed}: {_keys.Count} writes: {Acked} acknowledged, {Unknown} unknown, {Failed} failed; lost {Lost}");
        foreach (var (status, why) in _keys.Where(k => k.Outcome is ReplyStatus.Failed or ReplyStatus.Unknown)
                     .GroupBy(k => (k.Outcome, Why: Reason(k.Error))).OrderByDescending(g => g.Count()).Select(g => (g.Key.Outcome, $"{g.Count()} x {g.Key.Why}")))
            _output($"  {status}: {why}");
        _output($"deletes: {_keys.Count(k => k.DeleteSent)} sent, {_keys.Count(k => k.DeleteOutcome == ReplyStatus.Ok)} acknowledged; " +
                $"tombstones purged {_sim.Nodes.Values.Sum(n => n.Machine.TombstonesPurged)} (live machines), grace {_config.TombstoneGraceMs} ms; " +
                $"reads during faults of a deleted key that returned its value (sloppy quorum, not failed): {_deletedReadBack}");
        _output($"reads during faults: {Reads} ({ReadsOk} answered, {ReadsFailed} failed or timed out); client init fallbacks {InitFallbacks}; answered \"moved\" and resent {Moved}");
        if (_failedVisibleByDuplicate.Count > 0)
        {
            _output($"writes answered Failed, or deleted, but visible because the simulation delivered their Forward twice (not failed; the transport never duplicates): {_failedVisibleByDuplicate.Count}");
            foreach (var f in _failedVisibleByDuplicate.Take(3))
                _output("  " + f);
        }
        _output($"reads during faults older than a version known before them (sloppy quorum, not failed): {_readRegressions.Count}");
        foreach (var r in _readRegressions.Take(5))
            _output("  " + r);
        _output($"network: {_sim.MessagesDelivered} delivered, {_sim.MessagesDropped} dropped, {_sim.MessagesDuplicated} duplicated, " +
                $"{_sim.MessagesPartitioned} cut by partitions, {_sim.MessagesLostInCrashes} lost in crashes");
        _output($"virtual time {_sim.NowMs} ms; converged {(ConvergedAfterMs >= 0 ? $"{ConvergedAfterMs} ms after settling" : "never")}; " +
                $"unflushed writes lost to crashes {_sim.Nodes.Values.Sum(n => n.Disk.LostToCrashes)}");
        _output("events:");
        foreach (var e in _sim.EventLog)
            _output("  " + e);
        if (_sim.TraceEnabled || _sim.TraceKey is not null)
        {
            _output("trace:");
            foreach (var line in _sim.Trace)
                _output("  " + line);
        }
    }
}
