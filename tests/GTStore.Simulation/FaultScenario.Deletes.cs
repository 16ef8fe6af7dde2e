using GTStore.Core;
using GTStore.Core.Messages;

namespace GTStore.Simulation;

// Deletes in the fault runs (DESIGN.md "Versions, deletes, limits": "tombstones are purged only
// after every replica has them"). Clients delete keys whose write was acknowledged, each at most
// once, and the grace is short, so tombstones are purged while faults go on. Checks: a key whose
// delete was acknowledged reads NotFound on the settled cluster (a purge never brings the deleted
// value back), and once settled no node keeps a tombstone older than the grace.
public sealed partial class FaultScenario
{
    private readonly List<KeyRecord> _deletable = [];
    private int _deletedReadBack;

    private void Delete(Client c)
    {
        var index = Random.Next(_deletable.Count);
        var record = _deletable[index];
        _deletable[index] = _deletable[^1];
        _deletable.RemoveAt(_deletable.Count - 1);
        record.DeleteSent = true;
        SendDelete(c, record);
    }

    private void SendDelete(Client c, KeyRecord record)
    {
        Send(c, new ClientRequest(ClientOp.Delete, record.KeyBytes, null), reply =>
        {
            if (reply.Status == ReplyStatus.Moved)
            {
                Moved++;
                c.Forwarder = NodeId.None;
                _sim.Schedule(Random.Next(_options.MaxThinkMs + 1), () => Init(c, () => SendDelete(c, record)));
                return;
            }
            record.DeleteOutcome = reply.Status;
            record.DeleteAnsweredAtMs = _sim.NowMs;
            switch (reply.Status)
            {
                case ReplyStatus.Ok:
                    record.DeleteAcknowledged = reply.Value?.Version
                        ?? throw new SimulationException(Seed, $"delete of {record.Key} acknowledged without a version");
                    break;
                case ReplyStatus.Invalid:
                    throw new SimulationException(Seed, $"delete of {record.Key} rejected as invalid: {reply.Error}");
                default:
                    c.Forwarder = NodeId.None;
                    break;
            }
            Think(c);
        });
    }

    /// <summary>Tombstones older than the grace on running nodes (at most <paramref name="max"/>), each described.</summary>
    /// <param name="atMs">The time to judge by (default now): a tombstone is stale once it is older than the grace at that time.</param>
    public List<string> StaleTombstones(int max, long? atMs = null)
    {
        var stale = new List<string>();
        var olderThanMs = (atMs ?? _sim.NowMs) - _config.TombstoneGraceMs;
        foreach (var node in _sim.Nodes.Values.Where(n => n.Alive).OrderBy(n => n.Id))
        {
            foreach (var e in node.Disk.All())
            {
                if (stale.Count >= max)
                    return stale;
                if (e.Value.IsTombstone && HybridClock.PhysicalMs(e.Value.Version.Timestamp) < olderThanMs)
                    stale.Add($"{node.Id} holds a tombstone of {System.Text.Encoding.UTF8.GetString(e.Key)} at {e.Value.Version}");
            }
        }
        return stale;
    }
}
