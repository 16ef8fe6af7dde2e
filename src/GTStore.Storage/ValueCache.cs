using System.Runtime.InteropServices;
using GTStore.Core;

namespace GTStore.Storage;

/// <summary>
/// The latest value of recently read keys, so that reading a hot key again searches neither
/// RocksDB's memtable nor its tables. The engine fills it on a read and invalidates the key's
/// entry, under its lock, on every put, removal and drop, so a cached entry is always what is stored. One entry per ring hash,
/// keys compared in full. Bounded in bytes: the entries cached longest ago leave first (no
/// bookkeeping on a hit). Not thread-safe: the engine serialises calls.
/// </summary>
internal sealed class ValueCache(long capacityBytes)
{
    /// <summary>Counted per entry beyond key and value: the dictionary slot, two array headers, the queue slot.</summary>
    public const int EntryOverheadBytes = 128;

    private readonly Dictionary<ulong, Entry> _entries = [];
    private readonly Queue<(ulong Hash, long Seq)> _order = new();
    private long _bytes;
    private long _seq;

    private readonly record struct Entry(byte[] Key, VersionedValue Value, long Seq, int Bytes);

    public long Bytes => _bytes;

    public int Count => _entries.Count;

    public bool TryGet(ulong hash, ReadOnlySpan<byte> key, out VersionedValue value)
    {
        if (_entries.TryGetValue(hash, out var e) && key.SequenceEqual(e.Key))
        {
            value = e.Value;
            return true;
        }
        value = default;
        return false;
    }

    /// <summary>Caches <paramref name="value"/> as the key's stored latest (replacing any entry of this ring hash).</summary>
    public void Set(ulong hash, ReadOnlySpan<byte> key, VersionedValue value)
    {
        var bytes = key.Length + (value.Value?.Length ?? 0) + EntryOverheadBytes;
        if (bytes > capacityBytes)
        {
            Remove(hash, key);
            return;
        }
        ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_entries, hash, out var exists);
        var reuseKey = exists && key.SequenceEqual(slot.Key) ? slot.Key : key.ToArray();
        if (exists)
            _bytes -= slot.Bytes;
        slot = new Entry(reuseKey, value, ++_seq, bytes);
        _bytes += bytes;
        _order.Enqueue((hash, _seq));
        Evict();
    }

    /// <summary>Forgets the key (it was written, removed or dropped); an entry of another key with the same ring hash stays.</summary>
    public void Remove(ulong hash, ReadOnlySpan<byte> key)
    {
        if (_entries.TryGetValue(hash, out var e) && key.SequenceEqual(e.Key))
        {
            _entries.Remove(hash);
            _bytes -= e.Bytes;
        }
    }

    public void Clear()
    {
        _entries.Clear();
        _order.Clear();
        _bytes = 0;
    }

    private void Evict()
    {
        while (_bytes > capacityBytes && _order.TryDequeue(out var oldest))
        {
            if (_entries.TryGetValue(oldest.Hash, out var e) && e.Seq == oldest.Seq)
            {
                _entries.Remove(oldest.Hash);
                _bytes -= e.Bytes;
            }
        }
        // Replaced and removed entries leave stale slots in the queue: rebuild it when they dominate.
        if (_order.Count > 2 * _entries.Count + 1024)
        {
            _order.Clear();
            foreach (var (hash, e) in _entries.OrderBy(kv => kv.Value.Seq))
                _order.Enqueue((hash, e.Seq));
        }
    }
}
