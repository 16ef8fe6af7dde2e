using System.Runtime.CompilerServices;

namespace GTStore.Storage;

/// <summary>
/// A map from ring hashes to small values, kept in one array of (key, value) slots with linear
/// probing: a lookup reads one slot, usually one cache line, where
/// <see cref="Dictionary{TKey,TValue}"/> reads its bucket array and then its entry array, two
/// memory misses when the map is larger than the caches. The engine's indices (the version
/// index, the write log's and the value cache's positions) hold a node's every key and are read
/// at random on every request, so those misses were a tenth of a node's CPU under reads
/// (docs/ARCHITECTURE.md, "Performance"). Not thread-safe; enumeration is not ordered.
/// </summary>
/// <remarks>
/// Slot 0 of a key marks an empty slot, so the key 0 (a possible ring hash) is kept aside.
/// Slots are chosen by Fibonacci hashing of the whole key, since ring hashes of one Redis Cluster
/// slot share their top 14 bits. The table doubles past three quarters full and never shrinks
/// (<see cref="Clear"/> keeps its size, as Dictionary's does); removal shifts the following slots
/// back instead of leaving tombstones, so lookups never slow down with churn.
/// </remarks>
internal sealed class RingHashMap<TValue> where TValue : struct
{
    private const int InitialCapacity = 16;

    /// <summary>Most slots: the capacity is a power of two and indexed by int.</summary>
    private const int CapacityMax = 1 << 30;

    private struct Slot
    {
        public ulong Key;
        public TValue Value;
    }

    private Slot[] _slots = new Slot[InitialCapacity];
    private int _shift = 64 - 4; // log2(InitialCapacity)
    private int _used; // Slots holding a key other than 0.
    private bool _hasZero;
    private TValue _zeroValue;

    public int Count => _used + (_hasZero ? 1 : 0);

    public bool TryGetValue(ulong key, out TValue value)
    {
        ref var found = ref Find(key);
        if (Unsafe.IsNullRef(ref found))
        {
            value = default;
            return false;
        }
        value = found;
        return true;
    }

    public bool ContainsKey(ulong key) => !Unsafe.IsNullRef(ref Find(key));

    /// <summary>Adds the key or replaces its value.</summary>
    public TValue this[ulong key]
    {
        set => GetValueRefOrAddDefault(key, out _) = value;
    }

    /// <summary>
    /// The key's value slot, added with the default value if missing (<paramref name="exists"/>
    /// false); valid until the next add or removal.
    /// </summary>
    public ref TValue GetValueRefOrAddDefault(ulong key, out bool exists)
    {
        if (key == 0)
        {
            exists = _hasZero;
            if (!exists)
            {
                _hasZero = true;
                _zeroValue = default;
            }
            return ref _zeroValue;
        }
        var mask = _slots.Length - 1;
        var i = Home(key);
        while (true)
        {
            ref var slot = ref _slots[i];
            if (slot.Key == key)
            {
                exists = true;
                return ref slot.Value;
            }
            if (slot.Key == 0)
                break;
            i = (i + 1) & mask;
        }
        exists = false;
        if ((_used + 1) * 4L > _slots.Length * 3L)
        {
            Grow();
            return ref GetValueRefOrAddDefault(key, out exists);
        }
        _slots[i] = new Slot { Key = key };
        _used++;
        return ref _slots[i].Value;
    }

    public bool Remove(ulong key)
    {
        if (key == 0)
        {
            var had = _hasZero;
            _hasZero = false;
            _zeroValue = default;
            return had;
        }
        var mask = _slots.Length - 1;
        var i = Home(key);
        while (_slots[i].Key != key)
        {
            if (_slots[i].Key == 0)
                return false;
            i = (i + 1) & mask;
        }
        // Backward shift: move each following key of the run whose home is not between the hole
        // and it into the hole, so that no lookup meets an empty slot before its key.
        var hole = i;
        var j = i;
        while (true)
        {
            j = (j + 1) & mask;
            var k = _slots[j].Key;
            if (k == 0)
                break;
            var home = Home(k);
            var staysPut = hole <= j ? home > hole && home <= j : home > hole || home <= j;
            if (staysPut)
                continue;
            _slots[hole] = _slots[j];
            hole = j;
        }
        _slots[hole] = default;
        _used--;
        return true;
    }

    public void Clear()
    {
        if (_used > 0)
            Array.Clear(_slots);
        _used = 0;
        _hasZero = false;
        _zeroValue = default;
    }

    /// <summary>Every value, in no particular order; the map must not change meanwhile.</summary>
    public IEnumerable<TValue> Values
    {
        get
        {
            if (_hasZero)
                yield return _zeroValue;
            var slots = _slots;
            for (var i = 0; i < slots.Length; i++)
            {
                if (slots[i].Key != 0)
                    yield return slots[i].Value;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Home(ulong key) => (int)((key * 0x9E37_79B9_7F4A_7C15UL) >> _shift);

    private ref TValue Find(ulong key)
    {
        if (key == 0)
            return ref (_hasZero ? ref _zeroValue : ref Unsafe.NullRef<TValue>());
        var slots = _slots;
        var mask = slots.Length - 1;
        var i = Home(key);
        while (true)
        {
            ref var slot = ref slots[i];
            if (slot.Key == key)
                return ref slot.Value;
            if (slot.Key == 0)
                return ref Unsafe.NullRef<TValue>();
            i = (i + 1) & mask;
        }
    }

    private void Grow()
    {
        if (_slots.Length >= CapacityMax)
            throw new InvalidOperationException($"a ring hash map holds at most {CapacityMax * 3L / 4:N0} keys");
        var old = _slots;
        _slots = new Slot[old.Length * 2];
        _shift--;
        var mask = _slots.Length - 1;
        foreach (var slot in old)
        {
            if (slot.Key == 0)
                continue;
            var i = Home(slot.Key);
            while (_slots[i].Key != 0)
                i = (i + 1) & mask;
            _slots[i] = slot;
        }
    }
}
