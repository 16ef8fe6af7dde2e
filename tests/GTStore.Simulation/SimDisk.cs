using GTStore.Core;
using GTStore.Storage;
using Version = GTStore.Core.Version;

namespace GTStore.Simulation;

/// <summary>
/// A simulated disk with crash semantics, over two <see cref="MemoryEngine"/>s: the live view the
/// node reads and writes, and what has been made durable by <see cref="Flush"/>. Puts and range
/// drops since the last flush are kept in order; <see cref="Crash"/> throws them away and the live
/// view becomes the durable one again, as a process killed before its fsync would find its disk.
/// </summary>
public sealed class SimDisk : IStorageEngine
{
    private MemoryEngine _live = new();
    private readonly MemoryEngine _durable = new();
    // A removal is logged as its key with Remove set (compare-and-delete at that version).
    private readonly List<(ulong Hash, byte[]? Key, VersionedValue Value, HashRange? Drop, bool Remove)> _unflushed = [];

    public string Name => "simdisk";

    public long Count => _live.Count;

    /// <summary>Puts and drops not yet flushed (lost by a crash).</summary>
    public int UnflushedCount => _unflushed.Count;

    /// <summary>Puts and drops a crash has thrown away since the disk was made.</summary>
    public long LostToCrashes { get; private set; }

    /// <summary>What the disk holds durably (the state a restart finds).</summary>
    public IStorageEngine Durable => _durable;

    /// <summary>Called on every put (with its key) and range drop (with its range), for traces.</summary>
    public Action<string, byte[]?, HashRange?>? Traced { get; set; }

    public VersionedValue? Get(ulong hash, ReadOnlySpan<byte> key) => _live.Get(hash, key);

    public bool Put(ulong hash, ReadOnlySpan<byte> key, VersionedValue value)
    {
        var stored = _live.Put(hash, key, value);
        Traced?.Invoke($"put {value.Version} stored {stored}", key.ToArray(), null);
        if (stored)
            _unflushed.Add((hash, key.ToArray(), value, null, false));
        return stored;
    }

    public bool RemoveIfVersion(ulong hash, ReadOnlySpan<byte> key, Version version)
    {
        var removed = _live.RemoveIfVersion(hash, key, version);
        Traced?.Invoke($"remove if {version}: removed {removed}", key.ToArray(), null);
        if (removed)
            _unflushed.Add((hash, key.ToArray(), new VersionedValue(version, null), null, true));
        return removed;
    }

    public ScanCursor? Scan(HashRange range, ScanCursor? after, int maxEntries, int maxBytes, List<StoredEntry> into) =>
        _live.Scan(range, after, maxEntries, maxBytes, into);

    public long DropRange(HashRange range)
    {
        var removed = _live.DropRange(range);
        Traced?.Invoke($"drop range {range} ({removed} entries)", null, range);
        _unflushed.Add((0, null, default, range, false));
        return removed;
    }

    /// <summary>Makes every put and drop so far durable (the host's group-commit fsync).</summary>
    public void Flush()
    {
        foreach (var (hash, key, value, drop, remove) in _unflushed)
        {
            if (drop is { } range)
                _durable.DropRange(range);
            else if (remove)
                _durable.RemoveIfVersion(hash, key!, value.Version);
            else
                _durable.Put(hash, key!, value);
        }
        _unflushed.Clear();
    }

    /// <summary>The process died: unflushed writes are gone, the live view is what the disk held.</summary>
    public void Crash()
    {
        Traced?.Invoke($"crash: {_unflushed.Count} unflushed puts and drops lost", null, new HashRange(0, 0));
        LostToCrashes += _unflushed.Count;
        _unflushed.Clear();
        _live = new MemoryEngine();
        var batch = new List<StoredEntry>();
        ScanCursor? cursor = null;
        do
        {
            batch.Clear();
            cursor = _durable.Scan(new HashRange(0, 0), cursor, 4096, int.MaxValue, batch);
            foreach (var e in batch)
                _live.Put(e.Hash, e.Key, e.Value);
        }
        while (cursor is not null);
    }

    /// <summary>Every entry held (live view), in ring order.</summary>
    public List<StoredEntry> All()
    {
        var all = new List<StoredEntry>();
        var batch = new List<StoredEntry>();
        ScanCursor? cursor = null;
        do
        {
            batch.Clear();
            cursor = _live.Scan(new HashRange(0, 0), cursor, 4096, int.MaxValue, batch);
            all.AddRange(batch);
        }
        while (cursor is not null);
        return all;
    }

    public void Dispose()
    {
    }
}
