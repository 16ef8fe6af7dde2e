using GTStore.Core.Messages;

namespace GTStore.Core;

// The manager's part in purging tombstones (docs/ARCHITECTURE.md "Tombstones"): it combines the
// nodes' hint floors into one cluster-wide floor and answers every heartbeat with it. A tombstone
// newer than the floor may still be older than some hint's value: purging it would let that hint,
// handed back later, bring the deleted value back.
public sealed partial class ManagerMachine
{
    // The last hint floor each member reported (this manager's incarnation only).
    private readonly Dictionary<NodeId, long> _hintFloors = [];
    // Members that left or were removed keep their last floor for the tombstone grace: a leaver
    // hands its hints back after the commit that removes it.
    private readonly Dictionary<NodeId, (long Floor, long DepartedAtMs)> _departedFloors = [];

    private void OnHeartbeat(Heartbeat m)
    {
        _hintFloors[m.From] = m.HintFloor;
        _out.Send(m.From, new PurgeFloor(Current.Epoch, PurgeFloor()));
    }

    private void RememberDepartedFloor(NodeId id)
    {
        if (_departedFloors.Count >= Limits.NodesMax)
            _departedFloors.Clear(); // Bounded; losing them only matters for a leaver's last hints.
        _departedFloors[id] = (_hintFloors.GetValueOrDefault(id), _nowMs);
        _hintFloors.Remove(id);
    }

    /// <summary>
    /// No hint held by a member, or by a node that departed less than the grace ago, is older than
    /// this timestamp. 0 (no purge at all) while a membership change is pending or queued, or any
    /// member is down, has not acknowledged the committed ring, or has not reported since this
    /// manager started: its hints, or copies it no longer owns, are unknown.
    /// </summary>
    public long PurgeFloor()
    {
        if (Pending is not null || Current.NodeCount == 0)
            return 0;
        var floor = long.MaxValue;
        foreach (var (id, member) in _members)
        {
            if (member.State != MemberState.Up || !Current.Contains(id) || IsDown(id)
                || _acked.GetValueOrDefault(id) != (Current.Epoch, 0) || !_hintFloors.TryGetValue(id, out var reported))
                return 0;
            floor = Math.Min(floor, reported);
        }
        foreach (var (id, (reported, at)) in _departedFloors.ToList())
        {
            if (_nowMs - at > Config.TombstoneGraceMs)
                _departedFloors.Remove(id);
            else
                floor = Math.Min(floor, reported);
        }
        return floor;
    }
}
