using GTStore.Core.Messages;

namespace GTStore.Core;

// Handovers (docs/ARCHITECTURE.md "Membership and transfers"): a node that stops replicating a
// range it did not stream in the change's plan streams the range itself before dropping it.
public sealed partial class NodeMachine
{
    /// <summary>
    /// The transfer id of this node's handovers after the ring of <paramref name="epoch"/> was
    /// committed: the manager's plans for that epoch are over, and the id tells receivers which
    /// ring they must have seen.
    /// </summary>
    private static long HandoverIdFor(long epoch) => StartTransfers.IdFor(epoch, 0xFFFF);

    /// <summary>Handovers still streaming, by (transfer id, index) like the manager's transfers.</summary>
    private readonly Dictionary<(long TransferId, int Index), OutgoingTransfer> _handovers = [];
    private int _nextHandoverIndex;

    /// <summary>Handovers begun since start (for tests).</summary>
    public long HandoversStarted { get; private set; }

    /// <summary>Handovers still streaming; while any is, this node holds on to every range it no longer replicates.</summary>
    public int HandoversInProgress => _handovers.Count;

    /// <summary>
    /// Called when the ring moves from <paramref name="old"/> to the committed <see cref="Current"/>,
    /// before this node drops what it no longer replicates. The plan may have left this node out
    /// as a source (it was down or cut off when the plan was made, or the plan was redone without
    /// it), and its copy may be the only one of a write or a tombstone: merging by version makes
    /// streaming it again harmless, and dropping it would lose it. So every transfer this node
    /// owed from <paramref name="old"/> to the new ring and did not finish becomes a handover of its
    /// own, and a handover that an earlier commit started and that has not finished goes to the
    /// range's replicas in the new ring.
    /// </summary>
    private void PlanHandovers(long nowMs, Ring old)
    {
        var unfinished = _handovers.Values.Select(h => h.Task.Range)
            .Concat(_dueOnLeave?.Select(d => d.Range) ?? []).Distinct().ToList();
        _handovers.Clear();
        _dueOnLeave = null;
        var due = new List<(HashRange Range, NodeId Destination)>();

        var streamed = _outgoing.Values.Where(t => t.Done).ToLookup(t => t.Task.Destination, t => t.Task.Range);
        foreach (var owed in TransferPlanner.Plan(old, Current, Config.ReplicationFactor))
        {
            if (owed.Source == Self && !owed.Range.IsCoveredBy(streamed[owed.Destination]))
                due.Add((owed.Range, owed.Destination));
        }

        // Which replicas got an unfinished handover's data is not known: all of the new ones get it.
        foreach (var range in unfinished)
        {
            foreach (var (partition, replicas) in Current.Partitions(Config.ReplicationFactor))
            {
                if (Array.IndexOf(replicas, Self) >= 0)
                    continue; // This node replicates that part again and keeps it.
                foreach (var part in partition.Intersect(range))
                    due.AddRange(replicas.Select(replica => (part, replica)));
            }
        }

        if (!Current.Contains(Self) && !HasLeft)
        {
            // Left, or removed after a failure while it was only cut off: a removed node's copies
            // are stale and never handed over (see OnReplicaWrite), so they wait for LeaveDone.
            _dueOnLeave = due;
            return;
        }
        StartHandovers(nowMs, due);
    }

    /// <summary>Handovers due once LeaveDone says this node left (it is out of the committed ring, and may have been removed instead).</summary>
    private List<(HashRange Range, NodeId Destination)>? _dueOnLeave;

    /// <summary>This node left: it hands over what it did not stream before it exits (the host drains handovers too).</summary>
    private void OnLeaveDone(long nowMs)
    {
        HasLeft = true;
        _out.Exit = true;
        if (_dueOnLeave is { } due)
        {
            _dueOnLeave = null;
            StartHandovers(nowMs, due);
        }
    }

    private void StartHandovers(long nowMs, List<(HashRange Range, NodeId Destination)> due)
    {
        var id = HandoverIdFor(Current.Epoch);
        foreach (var (range, destination) in due)
            StartHandover(nowMs, id, range, destination);
    }

    private void StartHandover(long nowMs, long transferId, HashRange range, NodeId destination)
    {
        var index = _nextHandoverIndex++;
        var handover = new OutgoingTransfer(transferId, index, new TransferTask(range, Self, destination));
        _handovers[(transferId, index)] = handover;
        HandoversStarted++;
        SendBatch(nowMs, handover);
    }

    /// <summary>Whether a handover still needs data in <paramref name="range"/>.</summary>
    private bool IsHandingOver(HashRange range) =>
        _handovers.Values.Any(h => h.Task.Range.Intersect(range).Any());

    /// <summary>The last batch of a handover was acknowledged: once none is left, what this node no longer replicates goes.</summary>
    private void OnHandoverDone(OutgoingTransfer handover)
    {
        _handovers.Remove((handover.TransferId, handover.Index));
        if (_handovers.Count == 0 && Pending is null && Current.Contains(Self))
            DropUnownedRanges();
    }
}
