using System.Buffers.Binary;
using GTStore.Core;

namespace GTStore.Storage;

/// <summary>
/// The latest value of recently read keys, so that reading a hot key again searches neither
/// RocksDB's memtable nor its tables. The engine fills it on a read, refreshes a cached key's
/// entry on every put, and removes it on a removal or drop, all under its lock, so a cached entry
/// is always what is stored. One entry per ring hash, keys compared in full. Not thread-safe: the
/// engine serialises calls.
/// </summary>
/// <remarks>
/// Entries are records appended to one byte array used as a ring (a log-structured cache), and
/// a <see cref="RingHashMap{TValue}"/> maps a ring hash to its record's position; when the ring is full the oldest
/// records are overwritten, and the entries still pointing at them removed. No object is kept per
/// entry, so a cached value costs the garbage collector nothing: it was the promotion of every
/// cached array to older generations that made refreshing on a put cost write-heavy loads a third
/// of their throughput, when entries were arrays of their own. A record rewritten with a value of
/// the same length is overwritten in place. A hit copies the value out.
/// </remarks>
internal sealed class ValueCache
{
    // A record's header, then its key and value: the record's length (negative: the rest of the
    // ring is skipped), the key's, the value's (-1 for a tombstone), the version's node, the ring
    // hash, the version's timestamp.
    private const int LengthAt = 0, KeyLengthAt = 4, ValueLengthAt = 8, NodeAt = 12, HashAt = 16, TimestampAt = 24;

    /// <summary>Bytes of a record's header.</summary>
    public const int RecordHeaderBytes = TimestampAt + 8;

    /// <summary>
    /// What the map takes per entry, counted against the budget with the ring: a 16-byte slot
    /// (ring hash, position) in a table half to three quarters full, 21 to 32 bytes: 28 is near the top,
    /// so the budget is rarely overrun.
    /// </summary>
    public const int EntryOverheadBytes = 28;

    /// <summary>Records start at multiples of this, so a skip marker always fits at the ring's end.</summary>
    private const int Alignment = 8;

    private readonly int _capacity;
    private byte[]? _ring; // Allocated at the first entry.
    private readonly RingHashMap<long> _positions = new();
    // Absolute positions (ever increasing; the offset in the ring is position % capacity): the
    // next record goes at _head, and _tail is the oldest record not yet overwritten.
    private long _head;
    private long _tail;
    private long _bytes;

    /// <summary>Largest ring: one array, indexed by int.</summary>
    public const long CapacityBytesMax = 1L << 30;

    /// <param name="capacityBytes">The budget, 0 to <see cref="CapacityBytesMax"/>: the ring's records (headers included, and replaced ones not yet overwritten) plus <see cref="EntryOverheadBytes"/> per entry.</param>
    public ValueCache(long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacityBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacityBytes, CapacityBytesMax);
        _capacity = (int)(capacityBytes / Alignment * Alignment);
    }

    /// <summary>The bytes of the live records, headers included (their map slots not counted).</summary>
    public long Bytes => _bytes;

    public int Count => _positions.Count;

    /// <summary>Largest record cached: a bigger value is not, so that one value cannot empty the cache.</summary>
    private int RecordBytesMax => _capacity / 4;

    /// <summary>Starts loading the ring hash's map slot (<see cref="RingHashMap{TValue}.Prefetch"/>).</summary>
    public void Prefetch(ulong hash) => _positions.Prefetch(hash);

    public bool TryGet(ulong hash, ReadOnlySpan<byte> key, out VersionedValue value)
    {
        if (_positions.TryGetValue(hash, out var position))
        {
            var record = Record(position);
            var keyLength = KeyLength(record);
            if (record.Slice(RecordHeaderBytes, keyLength).SequenceEqual(key))
            {
                var valueLength = BinaryPrimitives.ReadInt32LittleEndian(record[ValueLengthAt..]);
                var version = new Core.Version(BinaryPrimitives.ReadInt64LittleEndian(record[TimestampAt..]), BinaryPrimitives.ReadInt32LittleEndian(record[NodeAt..]));
                value = new VersionedValue(version, valueLength < 0 ? null : record.Slice(RecordHeaderBytes + keyLength, valueLength).ToArray());
                return true;
            }
        }
        value = default;
        return false;
    }

    /// <summary>Caches <paramref name="value"/> as the key's stored latest (replacing any entry of this ring hash).</summary>
    public void Set(ulong hash, ReadOnlySpan<byte> key, VersionedValue value)
    {
        var found = _positions.TryGetValue(hash, out var held);
        Store(hash, key, value, found ? held : -1, sameKey: found && IsKey(Record(held), key));
    }

    /// <summary>Refreshes the key's entry with the value just written, if the key is cached (a key that is not stays uncached).</summary>
    public void Update(ulong hash, ReadOnlySpan<byte> key, VersionedValue value)
    {
        if (_positions.TryGetValue(hash, out var held) && IsKey(Record(held), key))
            Store(hash, key, value, held, sameKey: true);
    }

    /// <summary>
    /// Writes the key's record over the entry held for its ring hash (<paramref name="held"/>, or
    /// -1 for none; <paramref name="sameKey"/>: that entry is this key's): in place when the length
    /// is the same, else appended. A record too big to cache drops the key's own entry instead.
    /// </summary>
    private void Store(ulong hash, ReadOnlySpan<byte> key, VersionedValue value, long held, bool sameKey)
    {
        var length = LengthFor(key.Length, value.Value);
        if (length > RecordBytesMax)
        {
            if (sameKey)
                Forget(hash, held);
            return;
        }
        if (held >= 0)
        {
            var old = Record(held);
            if (sameKey && RecordLengthOf(old) == length)
            {
                Write(old, hash, key, value, length);
                return;
            }
            Forget(hash, held);
        }
        var position = Append(length);
        Write(Record(position), hash, key, value, length);
        _positions[hash] = position;
        _bytes += length;
    }

    private void Forget(ulong hash, long position)
    {
        _positions.Remove(hash);
        _bytes -= RecordLengthOf(Record(position));
    }

    /// <summary>Forgets the key (it was removed or dropped); an entry of another key with the same ring hash stays.</summary>
    public void Remove(ulong hash, ReadOnlySpan<byte> key)
    {
        if (_positions.TryGetValue(hash, out var position) && IsKey(Record(position), key))
            Forget(hash, position);
    }

    public void Clear()
    {
        _positions.Clear();
        _head = _tail = _bytes = 0;
    }

    private static int LengthFor(int keyLength, byte[]? value) =>
        (RecordHeaderBytes + keyLength + (value?.Length ?? 0) + Alignment - 1) / Alignment * Alignment;

    private static int RecordLengthOf(ReadOnlySpan<byte> record) => BinaryPrimitives.ReadInt32LittleEndian(record[LengthAt..]);

    private static int KeyLength(ReadOnlySpan<byte> record) => BinaryPrimitives.ReadInt32LittleEndian(record[KeyLengthAt..]);

    private static bool IsKey(ReadOnlySpan<byte> record, ReadOnlySpan<byte> key) => record.Slice(RecordHeaderBytes, KeyLength(record)).SequenceEqual(key);

    /// <summary>The record at <paramref name="position"/>, from its header to the ring's end.</summary>
    private Span<byte> Record(long position) => _ring.AsSpan((int)(position % _capacity));

    private static void Write(Span<byte> record, ulong hash, ReadOnlySpan<byte> key, VersionedValue value, int length)
    {
        BinaryPrimitives.WriteInt32LittleEndian(record[LengthAt..], length);
        BinaryPrimitives.WriteInt32LittleEndian(record[KeyLengthAt..], key.Length);
        BinaryPrimitives.WriteInt32LittleEndian(record[ValueLengthAt..], value.Value?.Length ?? -1);
        BinaryPrimitives.WriteInt32LittleEndian(record[NodeAt..], value.Version.Node);
        BinaryPrimitives.WriteUInt64LittleEndian(record[HashAt..], hash);
        BinaryPrimitives.WriteInt64LittleEndian(record[TimestampAt..], value.Version.Timestamp);
        key.CopyTo(record[RecordHeaderBytes..]);
        value.Value?.CopyTo(record[(RecordHeaderBytes + key.Length)..]);
    }

    /// <summary>
    /// Makes room for a record of <paramref name="length"/> bytes at the head and returns its
    /// position. A record never wraps: when the ring's end is too close, the rest of the ring is
    /// skipped (a negative length marks it) and the record starts at the ring's beginning.
    /// </summary>
    private long Append(int length)
    {
        _ring ??= GC.AllocateUninitializedArray<byte>(_capacity);
        var offset = (int)(_head % _capacity);
        if (offset + length > _capacity)
        {
            var rest = _capacity - offset;
            Reserve(rest);
            BinaryPrimitives.WriteInt32LittleEndian(_ring.AsSpan(offset + LengthAt), -rest);
            _head += rest;
        }
        Reserve(length);
        var position = _head;
        _head += length;
        return position;
    }

    /// <summary>
    /// Overwrites the oldest records until <paramref name="length"/> bytes from the head are free
    /// and the ring's span with the map's entries, one more included, fits the budget.
    /// </summary>
    private void Reserve(int length)
    {
        while (_head + length - _tail + (long)EntryOverheadBytes * (_positions.Count + 1) > _capacity)
        {
            var record = Record(_tail);
            var recordLength = RecordLengthOf(record);
            if (recordLength > 0)
            {
                var hash = BinaryPrimitives.ReadUInt64LittleEndian(record[HashAt..]);
                if (_positions.TryGetValue(hash, out var position) && position == _tail)
                    Forget(hash, position);
            }
            _tail += Math.Abs(recordLength);
        }
    }
}
