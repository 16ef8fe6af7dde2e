using GTStore.Core;

namespace GTStore.Storage;

/// <summary>
/// In-memory engine: entries in a set sorted by (hash, key), so a partition is a contiguous view
/// and a scan seeks in O(log n). One lock guards it: the node calls it from one loop, and status
/// reads come from other threads.
/// </summary>
public sealed class MemoryEngine : IStorageEngine
{
    private readonly SortedSet<Entry> _entries = new(EntryComparer.Instance);
    private readonly Lock _lock = new();
    private readonly BucketDigests _digests = new();

    public string Name => "memory";

    public long Count
    {
        get
        {
            lock (_lock)
                return _entries.Count;
        }
    }

    public VersionedValue? Get(ulong hash, ReadOnlySpan<byte> key)
    {
        lock (_lock)
            return _entries.TryGetValue(new Entry(hash, key.ToArray()), out var e) ? e.Value : null;
    }

    public ulong? BucketDigest(int bucket)
    {
        lock (_lock)
            return _digests[bucket];
    }

    public int? BucketTombstones(int bucket)
    {
        lock (_lock)
            return _digests.TombstonesIn(bucket);
    }

    public long? TombstoneCount
    {
        get
        {
            lock (_lock)
                return _digests.Tombstones;
        }
    }

    public bool Put(ulong hash, ReadOnlySpan<byte> key, VersionedValue value)
    {
        var probe = new Entry(hash, key.ToArray()) { Value = value };
        lock (_lock)
        {
            if (!_entries.TryGetValue(probe, out var held))
            {
                _entries.Add(probe);
                _digests.Add(hash, key, value.Version, value.IsTombstone);
                return true;
            }
            if (held.Value.Version >= value.Version)
                return false;
            _digests.Replace(hash, key, (held.Value.Version, held.Value.IsTombstone), value.Version, value.IsTombstone);
            held.Value = value;
            return true;
        }
    }

    public bool RemoveIfVersion(ulong hash, ReadOnlySpan<byte> key, Core.Version version)
    {
        var probe = new Entry(hash, key.ToArray());
        lock (_lock)
        {
            if (!_entries.TryGetValue(probe, out var held) || held.Value.Version != version || !_entries.Remove(held))
                return false;
            _digests.Remove(hash, key, version, held.Value.IsTombstone);
            return true;
        }
    }

    public ScanCursor? Scan(HashRange range, ScanCursor? after, int maxEntries, int maxBytes, List<StoredEntry> into)
    {
        lock (_lock)
        {
            var segments = range.Segments().ToList();
            var first = after is { } c ? segments.FindIndex(s => c.Hash >= s.Low && c.Hash <= s.High) : 0;
            var taken = 0;
            var bytes = 0;
            for (var s = Math.Max(first, 0); s < segments.Count; s++)
            {
                var (low, high) = segments[s];
                var from = s == first && after is { } a ? new Entry(a.Hash, a.Key) : new Entry(low, []);
                foreach (var e in _entries.GetViewBetween(from, Entry.UpperBound(high)))
                {
                    if (s == first && after is not null && EntryComparer.Instance.Compare(e, from) == 0)
                        continue;
                    if (taken >= maxEntries || (taken > 0 && bytes >= maxBytes))
                        return new ScanCursor(into[^1].Hash, into[^1].Key);
                    into.Add(new StoredEntry(e.Hash, e.Key, e.Value));
                    taken++;
                    bytes += e.Key.Length + (e.Value.Value?.Length ?? 0);
                }
            }
            return null;
        }
    }

    public long DropRange(HashRange range)
    {
        lock (_lock)
        {
            long removed = 0;
            foreach (var (low, high) in range.Segments())
            {
                var doomed = _entries.GetViewBetween(new Entry(low, []), Entry.UpperBound(high)).ToList();
                foreach (var e in doomed)
                {
                    _entries.Remove(e);
                    _digests.Remove(e.Hash, e.Key, e.Value.Version, e.Value.IsTombstone);
                }
                removed += doomed.Count;
            }
            return removed;
        }
    }

    public void Flush()
    {
    }

    public void Dispose()
    {
    }

    private sealed class Entry(ulong hash, byte[] key, bool upperBound = false)
    {
        public ulong Hash { get; } = hash;
        public byte[] Key { get; } = key;
        /// <summary>Sorts after every key of its hash; used only as a view bound.</summary>
        public bool IsUpperBound { get; } = upperBound;
        public VersionedValue Value { get; set; }

        public static Entry UpperBound(ulong hash) => new(hash, [], upperBound: true);
    }

    private sealed class EntryComparer : IComparer<Entry>
    {
        public static readonly EntryComparer Instance = new();

        public int Compare(Entry? x, Entry? y)
        {
            var c = x!.Hash.CompareTo(y!.Hash);
            if (c != 0)
                return c;
            if (x.IsUpperBound || y.IsUpperBound)
                return x.IsUpperBound.CompareTo(y.IsUpperBound);
            return x.Key.AsSpan().SequenceCompareTo(y.Key);
        }
    }
}
