namespace GTStore.Core;

/// <summary>One partition to stream: the data of <see cref="Range"/> goes from Source to Destination.</summary>
public readonly record struct TransferTask(HashRange Range, NodeId Source, NodeId Destination);

/// <summary>
/// Plans the data that must move when the ring changes (the seed's "donation"). It walks the old
/// and new rings together with two pointers (the seed's two-pointer pass): every boundary of
/// either ring starts an elementary range whose old and new preference lists are compared; each
/// node that gains the range gets it from a node that held it. Adjacent elementary ranges with the
/// same source and destination are merged into one task.
/// </summary>
public static class TransferPlanner
{
    /// <param name="preferredSource">
    /// A node to stream from whenever it held the range (the leaving node donates its own data);
    /// otherwise the first old replica that also stays a replica, else the first old replica.
    /// </param>
    /// <param name="unavailable">Nodes that cannot stream (down): never chosen as a source. A range none of whose old replicas is available is left out.</param>
    public static List<TransferTask> Plan(Ring old, Ring next, int replicationFactor, NodeId preferredSource = default, IReadOnlySet<NodeId>? unavailable = null)
    {
        unavailable ??= new HashSet<NodeId>();
        var tasks = new List<TransferTask>();
        if (old.Tokens.IsEmpty || next.Tokens.IsEmpty)
            return tasks;

        var oldTokens = old.Tokens;
        var newTokens = next.Tokens;
        int i = 0, j = 0;
        // Boundaries in increasing order; ranges are (previous boundary, boundary], and the first
        // range wraps from the largest boundary of either ring.
        var last = Math.Max(oldTokens[^1].Position, newTokens[^1].Position);
        var previous = last;
        while (i < oldTokens.Length || j < newTokens.Length)
        {
            ulong boundary;
            if (j >= newTokens.Length || (i < oldTokens.Length && oldTokens[i].Position <= newTokens[j].Position))
                boundary = oldTokens[i].Position;
            else
                boundary = newTokens[j].Position;

            // Keys in (previous, boundary] map to the first token at or after boundary in each ring.
            var oldIndex = i < oldTokens.Length ? i : 0;
            var newIndex = j < newTokens.Length ? j : 0;
            var oldReplicas = old.PreferenceListFrom(oldIndex, replicationFactor);
            var newReplicas = next.PreferenceListFrom(newIndex, replicationFactor);
            var range = new HashRange(previous, boundary);
            foreach (var destination in newReplicas)
            {
                if (Array.IndexOf(oldReplicas, destination) >= 0)
                    continue;
                // Every available old replica streams the range: a write acknowledged by W of
                // them (or by a stand-in whose hint went to one) may be missing from any single
                // one, and merging by version makes the copies harmless.
                foreach (var source in Sources(oldReplicas, newReplicas, preferredSource, unavailable))
                    Append(tasks, new TransferTask(range, source, destination));
            }

            if (i < oldTokens.Length && oldTokens[i].Position == boundary)
                i++;
            if (j < newTokens.Length && newTokens[j].Position == boundary)
                j++;
            previous = boundary;
        }
        return tasks;
    }

    /// <summary>Available old replicas, the preferred (leaving) node first.</summary>
    private static IEnumerable<NodeId> Sources(NodeId[] oldReplicas, NodeId[] newReplicas, NodeId preferred, IReadOnlySet<NodeId> unavailable)
    {
        var first = ChooseSource(oldReplicas, newReplicas, preferred, unavailable);
        if (!first.IsNode)
            yield break;
        yield return first;
        foreach (var n in oldReplicas)
        {
            if (n != first && !unavailable.Contains(n))
                yield return n;
        }
    }

    private static NodeId ChooseSource(NodeId[] oldReplicas, NodeId[] newReplicas, NodeId preferred, IReadOnlySet<NodeId> unavailable)
    {
        if (preferred.IsNode && Array.IndexOf(oldReplicas, preferred) >= 0 && !unavailable.Contains(preferred))
            return preferred;
        foreach (var n in oldReplicas)
        {
            if (Array.IndexOf(newReplicas, n) >= 0 && !unavailable.Contains(n))
                return n;
        }
        foreach (var n in oldReplicas)
        {
            if (!unavailable.Contains(n))
                return n;
        }
        return NodeId.None;
    }

    private static void Append(List<TransferTask> tasks, TransferTask task)
    {
        // Merge with an earlier task of the same pair whose range ends where this one starts.
        for (var k = tasks.Count - 1; k >= 0 && k >= tasks.Count - 2 * Limits.ReplicationFactorMax * Limits.ReplicationFactorMax; k--)
        {
            var t = tasks[k];
            if (t.Source == task.Source && t.Destination == task.Destination && t.Range.End == task.Range.Start)
            {
                tasks[k] = t with { Range = new HashRange(t.Range.Start, task.Range.End) };
                return;
            }
        }
        tasks.Add(task);
    }
}
