using System.IO.Hashing;

namespace GTStore.Storage;

/// <summary>
/// The version held for every stored key, in memory, so that a put decides "newer than what is
/// held?" without reading the store first (the read that used to precede every put), and whether
/// that version is a tombstone, so the engine counts tombstones without reading. The key itself is
/// not kept, only its ring hash and a 64-bit fingerprint from an independent hash of the key: a
/// 32-byte slot per key (the 8-byte hash and the 24-byte entry) in a <see cref="RingHashMap{TValue}"/>
/// half to three quarters full, so 43 to 64 bytes per key, one memory read per lookup.
/// </summary>
/// <remarks>
/// Exactness. A ring hash with no entry means no stored key has it; a ring hash whose entry has
/// another fingerprint means the one key held there is another key. Both answers are exact. Two
/// stored keys with the same ring hash (a 64-bit collision within one node) mark the hash
/// <em>shared</em>, and a shared hash is always looked up in the store. A key is taken for the
/// indexed key when ring hash and fingerprint both match: 114 independent bits (50 of XXH3 beyond
/// the slot, 64 of XXH3 under another seed), so a mistake needs two keys of one slot to collide
/// in both, about 2^-114 per pair. Not thread-safe: the engine serialises calls.
/// </remarks>
internal sealed class VersionIndex
{
    private const long FingerprintSeed = 0x4754_5374_6B65_7932; // "GTStkey2", independent of KeyHash.Seed

    private readonly RingHashMap<Entry> _entries = new();

    public enum Found
    {
        /// <summary>No key with this ring hash is stored: the key is not held.</summary>
        Absent,
        /// <summary>The key is held with the version given.</summary>
        Held,
        /// <summary>Several keys share this ring hash: ask the store.</summary>
        AskStore,
    }

    // Fields ordered widest first: 24 bytes rather than the 32 that padding after Node made.
    private readonly record struct Entry(long Timestamp, ulong Fingerprint, int Node, bool Shared, bool Tombstone);

    public int Count => _entries.Count;

    public static ulong Fingerprint(ReadOnlySpan<byte> key) => XxHash3.HashToUInt64(key, FingerprintSeed);

    public Found Find(ulong hash, ulong fingerprint, out Core.Version version, out bool tombstone)
    {
        version = default;
        tombstone = false;
        if (!_entries.TryGetValue(hash, out var e) || (!e.Shared && e.Fingerprint != fingerprint))
            return Found.Absent;
        if (e.Shared)
            return Found.AskStore;
        version = new Core.Version(e.Timestamp, e.Node);
        tombstone = e.Tombstone;
        return Found.Held;
    }

    /// <summary>Starts loading the ring hash's entry (<see cref="RingHashMap{TValue}.Prefetch"/>).</summary>
    public void Prefetch(ulong hash) => _entries.Prefetch(hash);

    /// <summary>Records that the key is now held with <paramref name="version"/> (a tombstone or not).</summary>
    public void Set(ulong hash, ulong fingerprint, Core.Version version, bool tombstone)
    {
        ref var e = ref _entries.GetValueRefOrAddDefault(hash, out var exists);
        if (!exists || (!e.Shared && e.Fingerprint == fingerprint))
            e = new Entry(version.Timestamp, fingerprint, version.Node, Shared: false, tombstone);
        else
            e = e with { Shared = true };
    }

    /// <summary>Records that the key is no longer held (a shared hash stays shared: other keys may remain).</summary>
    public void Remove(ulong hash, ulong fingerprint)
    {
        if (_entries.TryGetValue(hash, out var e) && !e.Shared && e.Fingerprint == fingerprint)
            _entries.Remove(hash);
    }

    public void Clear() => _entries.Clear();

    /// <summary>Forgets every key with this ring hash (the range holding it was dropped).</summary>
    public void RemoveHash(ulong hash) => _entries.Remove(hash);
}
