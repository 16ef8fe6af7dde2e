using GTStore.Core.Messages;

namespace GTStore.Core;

// Ring updates and transfers (DESIGN.md "Membership and transfers").
public sealed partial class NodeMachine
{
    private sealed class OutgoingTransfer(long transferId, int index, TransferTask task)
    {
        public long TransferId { get; } = transferId;
        public int Index { get; } = index;
        public TransferTask Task { get; } = task;
        public ScanCursor? BatchStart { get; set; }
        public ScanCursor? Next { get; set; }
        public int Sequence { get; set; }
        public bool Last { get; set; }
        public bool Done { get; set; }
        public long SentAtMs { get; set; }
    }

    private readonly Dictionary<(long TransferId, int Index), OutgoingTransfer> _outgoing = [];

    /// <summary>Entries received from transfers since start (for status and tests).</summary>
    public long TransferredInEntries { get; private set; }

    private static (long, long) RingState(Ring current, Ring? pending) => (current.Epoch, pending?.Epoch ?? 0);

    private void OnRingUpdate(long nowMs, RingUpdate m)
    {
        if (RingState(m.Current, m.Pending).CompareTo(RingState(Current, Pending)) > 0)
        {
            var old = Current;
            var epochChanged = m.Current.Epoch != Current.Epoch;
            Config = m.Config;
            Current = m.Current;
            Pending = m.Pending;
            if (epochChanged && Self.IsNode)
                PlanHandovers(nowMs, old);
            if (Pending is null)
                _outgoing.Clear();
            if (Pending is null && epochChanged && Current.Contains(Self))
                DropUnownedRanges();
        }
        if (Self.IsNode)
            _out.Send(NodeId.Manager, new RingAck(Self, Current.Epoch, Pending?.Epoch ?? 0));
    }

    /// <summary>
    /// True until the first committed ring after this machine started: what the store then holds
    /// outside this node's ranges is what it kept as a stand-in before a crash (hints are written
    /// to the store too), so it becomes hints again instead of being dropped.
    /// </summary>
    private bool _rehomeStraysOnce = true;

    /// <summary>
    /// Once a ring is committed, data this node no longer replicates is removed, except what a
    /// handover still streams (it is dropped when the last handover is done).
    /// </summary>
    private void DropUnownedRanges()
    {
        var rehome = _rehomeStraysOnce;
        _rehomeStraysOnce = false;
        List<ulong>? hinted = null; // Hashes of the keys this node holds hints for, computed once.
        foreach (var (range, replicas) in Current.Partitions(Config.ReplicationFactor))
        {
            if (Array.IndexOf(replicas, Self) < 0 && !IsHandingOver(range))
            {
                try
                {
                    if (rehome)
                    {
                        // Keep the stored copies: each goes with its last hint's acknowledgement
                        // (DropStrayCopy), so a second crash before the handoff loses nothing.
                        foreach (var e in ScanAll(range).ToList())
                            Rehome(Self, e.Key, e.Value);
                    }
                    else
                    {
                        hinted ??= [.. _hints.Values.SelectMany(byKey => byKey.Values).Select(h => KeyHash.Of(h.Key)).Distinct()];
                        DropRangeKeepingHints(range, hinted);
                    }
                }
                catch (StorageException)
                {
                    // Extra copies are harmless; the next committed ring drops them again.
                }
            }
        }
    }

    /// <summary>
    /// Drops <paramref name="range"/> except the keys this node holds hints for: their stored
    /// copies are what makes those hints survive a crash, and each goes with its hint's
    /// acknowledgement (DropStrayCopy). The range is dropped as the sub-ranges between hinted
    /// hashes, so no moment exists at which a hinted copy is gone from the store.
    /// </summary>
    private void DropRangeKeepingHints(HashRange range, List<ulong> hintedHashes)
    {
        var start = range.Start;
        var inRange = hintedHashes.Where(range.Contains).OrderBy(h => unchecked(h - range.Start)); // ring order from the range's start
        foreach (var hash in inRange)
        {
            var before = unchecked(hash - 1);
            if (before != start)
                _store.DropRange(new HashRange(start, before));
            start = hash;
        }
        if (start != range.End)
            _store.DropRange(new HashRange(start, range.End));
    }

    private void OnStartTransfers(long nowMs, StartTransfers m)
    {
        if (Pending?.Epoch != m.PendingEpoch)
            return; // A retry from a change this node has already seen committed, or not yet seen.
        foreach (var (index, task) in m.Tasks)
        {
            if (task.Source != Self)
                continue;
            if (_outgoing.TryGetValue((m.TransferId, index), out var existing))
            {
                if (existing.Done)
                    _out.Send(NodeId.Manager, new TransferTaskDone(Self, m.TransferId, index));
                continue;
            }
            var transfer = new OutgoingTransfer(m.TransferId, index, task);
            _outgoing[(m.TransferId, index)] = transfer;
            SendBatch(nowMs, transfer);
        }
    }

    private void SendBatch(long nowMs, OutgoingTransfer t)
    {
        var entries = new List<StoredEntry>();
        t.Next = _store.Scan(t.Task.Range, t.BatchStart, Limits.TransferBatchEntriesMax, Limits.TransferBatchBytesMax, entries);
        t.Last = t.Next is null;
        t.SentAtMs = nowMs;
        _out.Send(t.Task.Destination, new TransferBatch(t.TransferId, t.Index, t.Sequence, Self, entries, t.Last));
    }

    private void OnTransferBatch(TransferBatch m)
    {
        if (m.TransferId >> 16 > (Pending?.Epoch ?? Current.Epoch))
            return; // This node has not seen that ring yet: no ack, the source sends the batch again.
        foreach (var e in m.Entries)
        {
            _clock.Observe(e.Value.Version.Timestamp);
            // A batch that arrives late (delayed or resent) after its change was committed, maybe
            // followed by others, can carry keys this node no longer replicates: nothing would drop them.
            if (!IsReplica(e.Hash))
                continue;
            if (!TryStoreTransferred(e))
                return; // Not acknowledged: the source sends the batch again.
        }
        TransferredInEntries += m.Entries.Count;
        _out.Send(m.From, new TransferBatchAck(m.TransferId, m.TaskIndex, m.Sequence, Self));
    }

    private bool TryStoreTransferred(StoredEntry e)
    {
        if (WasPurged(e.Hash, e.Key, e.Value.Version))
            return true; // Superseded by a tombstone purged less than the grace ago.
        try
        {
            _store.Put(e.Hash, e.Key, e.Value);
            return true;
        }
        catch (StorageException)
        {
            return false;
        }
    }

    private void OnTransferBatchAck(long nowMs, TransferBatchAck m)
    {
        var key = (m.TransferId, m.TaskIndex);
        var handover = !_outgoing.ContainsKey(key);
        if (!(handover ? _handovers : _outgoing).TryGetValue(key, out var t) || t.Done || m.Sequence != t.Sequence)
            return;
        if (t.Last)
        {
            t.Done = true;
            if (handover)
                OnHandoverDone(t);
            else
                _out.Send(NodeId.Manager, new TransferTaskDone(Self, t.TransferId, t.Index));
            return;
        }
        t.BatchStart = t.Next;
        t.Sequence++;
        SendBatch(nowMs, t);
    }

    /// <summary>A batch whose ack did not come in time is sent again; merging by version makes that harmless.</summary>
    private void ResendTransfers(long nowMs)
    {
        foreach (var t in _outgoing.Values.Concat(_handovers.Values))
        {
            if (!t.Done && nowMs - t.SentAtMs >= Config.RequestTimeoutMs)
                SendBatch(nowMs, t);
        }
    }
}
