using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace GTStore.Storage;

/// <summary>
/// A map from ring hashes to small values, kept in one table of (key, value) slots with linear
/// probing: a lookup reads one slot, usually one cache line, where
/// <see cref="Dictionary{TKey,TValue}"/> reads its bucket array and then its entry array, two
/// memory misses when the map is larger than the caches. The engine's indices (the version
/// index, the write log's and the value cache's positions) hold a node's every key and are read
/// at random on every request, so those misses were a tenth of a node's CPU under reads
/// (docs/ARCHITECTURE.md, "Performance"). Not thread-safe; enumeration is not ordered.
/// </summary>
/// <remarks>
/// <para>
/// The table is native memory, freed the moment it is replaced: tables of a million keys are
/// tens of megabytes, and as managed arrays each one outgrown stayed in the large object heap
/// (which the collector does not compact) and in the process's resident memory, 100 bytes per
/// key at a million keys (bench/results/memory-per-key.md). A map's finalizer frees its table.
/// The collector is not told of the native bytes (GC.AddMemoryPressure): that made it collect
/// the older generations two to three times as often under writes, as the write log's tables
/// come and go, for memory that the growth already frees at once.
/// </para>
/// <para>
/// The key 0 marks an empty slot, so the key 0 (a possible ring hash) is kept aside. A key's
/// home slot is its Fibonacci hash (ring hashes of one Redis Cluster slot share their top 14
/// bits) scaled to the table's size, so that size need not be a power of two: the table grows
/// by half past three quarters full, so it is half to three quarters full, and never shrinks
/// (<see cref="Clear"/> keeps its size, as Dictionary's does). Removal shifts the following slots
/// back instead of leaving tombstones, so lookups never slow down with churn.
/// </para>
/// </remarks>
internal sealed unsafe class RingHashMap<TValue> : IDisposable where TValue : unmanaged
{
    private const int InitialCapacity = 16;

    /// <summary>Most slots: indices are ints.</summary>
    private const int CapacityMax = int.MaxValue / 2;

    private struct Slot
    {
        public ulong Key;
        public TValue Value;
    }

    private Slot* _slots;
    private int _capacity;
    private int _used; // Slots holding a key other than 0.
    private int _changes; // Counts adds, removals and clears, so that enumeration detects them.
    private bool _hasZero;
    private TValue _zeroValue;

    public RingHashMap() => Allocate(InitialCapacity);

    ~RingHashMap() => Free();

    /// <summary>Frees the table now rather than at finalization; the map must not be used after.</summary>
    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    public int Count => _used + (_hasZero ? 1 : 0);

    /// <summary>Bytes of the table (native memory).</summary>
    public long TableBytes => (long)_capacity * sizeof(Slot);

    public bool TryGetValue(ulong key, out TValue value)
    {
        if (key == 0)
        {
            value = _zeroValue;
            return _hasZero;
        }
        var slot = _slots + Probe(key);
        value = slot->Value;
        return slot->Key != 0;
    }

    /// <summary>
    /// Starts loading the key's home slot into the cache, so that a lookup soon after does not
    /// wait for memory (a miss when the table is larger than the caches). Only a hint: it changes
    /// nothing, and a prefetch cannot fault, so a stale table address is harmless.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(ulong key)
    {
        if (Sse.IsSupported)
            Sse.Prefetch0(_slots + Home(key));
    }

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
                _changes++;
            }
            return ref _zeroValue;
        }
        var i = Probe(key);
        exists = _slots[i].Key != 0;
        if (exists)
            return ref _slots[i].Value;
        if ((_used + 1) * 4L > _capacity * 3L)
        {
            Grow();
            i = Probe(key);
        }
        _slots[i] = new Slot { Key = key };
        _used++;
        _changes++;
        return ref _slots[i].Value;
    }

    public bool Remove(ulong key)
    {
        if (key == 0)
        {
            var had = _hasZero;
            _hasZero = false;
            _zeroValue = default;
            _changes++;
            return had;
        }
        var i = Probe(key);
        if (_slots[i].Key == 0)
            return false;
        // Backward shift: move each following key of the run whose home is not between the hole
        // and it into the hole, so that no lookup meets an empty slot before its key.
        var hole = i;
        var j = i;
        while (true)
        {
            j = Next(j);
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
        _changes++;
        return true;
    }

    public void Clear()
    {
        if (_used > 0)
            NativeMemory.Clear(_slots, (nuint)TableBytes);
        _used = 0;
        _hasZero = false;
        _zeroValue = default;
        _changes++;
    }

    /// <summary>Every value, in no particular order; the map must not change meanwhile (that throws).</summary>
    public IEnumerable<TValue> Values
    {
        get
        {
            var changes = _changes;
            if (_hasZero)
                yield return _zeroValue;
            for (var i = 0; i < _capacity; i++)
            {
                if (changes != _changes)
                    throw new InvalidOperationException("the map changed while its values were enumerated");
                if (KeyAt(i) != 0)
                    yield return ValueAt(i);
            }
        }
    }

    /// <summary>
    /// Copies every key and its value into <paramref name="keys"/> and <paramref name="values"/>
    /// (each at least <see cref="Count"/> long), in no particular order, by one pass over the
    /// table; returns how many were copied.
    /// </summary>
    public int CopyTo(Span<ulong> keys, Span<TValue> values)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keys.Length, Count, nameof(keys));
        ArgumentOutOfRangeException.ThrowIfLessThan(values.Length, Count, nameof(values));
        var n = 0;
        if (_hasZero)
        {
            keys[0] = 0;
            values[0] = _zeroValue;
            n = 1;
        }
        for (var i = 0; i < _capacity; i++)
        {
            if (_slots[i].Key == 0)
                continue;
            keys[n] = _slots[i].Key;
            values[n] = _slots[i].Value;
            n++;
        }
        return n;
    }

    // Pointer reads outside the iterator, which may not hold pointers across its yields.
    private ulong KeyAt(int i) => _slots[i].Key;

    private TValue ValueAt(int i) => _slots[i].Value;

    /// <summary>The key's home slot: its Fibonacci hash scaled to the table's size (a multiply, no division).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Home(ulong key) => (int)Math.BigMul(key * 0x9E37_79B9_7F4A_7C15UL, (ulong)_capacity, out _);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Next(int i) => i + 1 == _capacity ? 0 : i + 1;

    /// <summary>The slot holding <paramref name="key"/> (not 0), or the empty slot where it would go.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Probe(ulong key)
    {
        var slots = _slots;
        var i = Home(key);
        while (true)
        {
            var k = slots[i].Key;
            if (k == key || k == 0)
                return i;
            i = Next(i);
        }
    }

    private void Grow()
    {
        if (_capacity >= CapacityMax)
            throw new InvalidOperationException($"a ring hash map holds at most {CapacityMax * 3L / 4:N0} keys");
        var old = _slots;
        var oldCapacity = _capacity;
        Allocate((int)Math.Min(CapacityMax, oldCapacity + oldCapacity / 2L));
        for (var s = 0; s < oldCapacity; s++)
        {
            if (old[s].Key != 0)
                _slots[Probe(old[s].Key)] = old[s];
        }
        NativeMemory.Free(old);
    }

    /// <summary>A zeroed table of <paramref name="capacity"/> slots (large ones come straight from the OS, already zero).</summary>
    private void Allocate(int capacity)
    {
        _slots = (Slot*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(Slot));
        _capacity = capacity;
    }

    private void Free()
    {
        if (_slots is null)
            return;
        NativeMemory.Free(_slots);
        _slots = null;
        _capacity = 0;
    }
}
