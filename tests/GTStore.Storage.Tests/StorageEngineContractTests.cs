using CsCheck;
using GTStore.Core;
using Version = GTStore.Core.Version;

namespace GTStore.Storage.Tests;

/// <summary>
/// The contract every <see cref="IStorageEngine"/> keeps. STYLE.md Tests: "have one storage-engine
/// contract suite"; DESIGN.md Layers: "Storage is an IStorageEngine keyed by partition:
/// put/get/delete-with-version, iterate a partition, drop a partition, flush ... One shared contract
/// test suite runs against every engine." Each engine subclasses this and supplies
/// <see cref="CreateEngine"/>; every call must return a new, empty engine.
/// Property failures print a CsCheck seed; replay with CsCheck_Seed=... .
/// </summary>
public abstract class StorageEngineContractTests
{
    /// <summary>A new, empty engine, owned (and disposed) by the test.</summary>
    protected abstract IStorageEngine CreateEngine();

    /// <summary>Iterations of each property test; a slow durable engine may lower it.</summary>
    protected virtual int PropertyIterations => 100;

    private static VersionedValue V(long ts, byte[]? value, int node = 1) => new(new Version(ts, node), value);

    private static StoredEntry E(ulong hash, byte[] key, long ts = 1) => new(hash, key, V(ts, [.. key, 0xEE]));

    private static void PutAll(IStorageEngine engine, IEnumerable<StoredEntry> entries)
    {
        foreach (var e in entries)
            engine.Put(e.Hash, e.Key, e.Value);
    }

    /// <summary>Every entry of the range, paging with the given limits; asserts the paging contract on the way.</summary>
    private static List<StoredEntry> ScanAll(IStorageEngine engine, HashRange range, int maxEntries, int maxBytes)
    {
        var all = new List<StoredEntry>();
        ScanCursor? cursor = null;
        // Bounded: each page with a cursor must make progress, so there are at most Count + 1 pages.
        for (var page = 0; page <= engine.Count + 1; page++)
        {
            var batch = new List<StoredEntry>();
            var next = engine.Scan(range, cursor, maxEntries, maxBytes, batch);
            Assert.True(batch.Count <= maxEntries, $"page of {batch.Count} entries, limit {maxEntries}");
            var bytesBeforeLast = batch.SkipLast(1).Sum(e => e.Key.Length + (e.Value.Value?.Length ?? 0));
            Assert.True(batch.Count <= 1 || bytesBeforeLast < maxBytes,
                $"page went on after {bytesBeforeLast} bytes, limit {maxBytes}");
            all.AddRange(batch);
            if (next is null)
                return all;
            Assert.True(batch.Count > 0, "a page that returns a cursor must return at least one entry");
            cursor = next;
        }
        Assert.Fail($"scan of {range} did not finish within {engine.Count + 2} pages");
        return all;
    }

    /// <summary>Position of a hash in ring order starting just after <paramref name="range"/>.Start.</summary>
    private static ulong RingRank(HashRange range, ulong hash) => unchecked(hash - (range.Start + 1));

    private static string Id(ulong hash, byte[] key) => $"{hash:x16}/{Convert.ToHexString(key)}";

    private static readonly Gen<ulong> GenHash = Gen.OneOf(
        Gen.ULong[0, 12],
        Gen.ULong[ulong.MaxValue - 12, ulong.MaxValue],
        Gen.ULong[(1UL << 63) - 6, (1UL << 63) + 6],
        Gen.ULong);

    // Keys short and over a small alphabet with zero bytes, so equal hashes with different keys,
    // empty keys and keys that are prefixes of each other all occur.
    private static readonly Gen<byte[]> GenKey = Gen.Byte[0, 2].Array[0, 3];

    private static readonly Gen<VersionedValue> GenValue = Gen.Select(Gen.Long[1, 20], Gen.Int[1, 3], Gen.Byte.Array[0, 24], Gen.Int[0, 5],
        (ts, node, bytes, tomb) => new VersionedValue(new Version(ts, node), tomb == 0 ? null : bytes));

    private static readonly Gen<StoredEntry[]> GenEntries =
        Gen.Select(GenHash, GenKey, GenValue, (h, k, v) => new StoredEntry(h, k, v)).Array[0, 40];

    private static readonly Gen<HashRange> GenRange = Gen.Select(GenHash, GenHash, (s, e) => new HashRange(s, e));

    /// <summary>What the engine must hold after the puts: per (hash, key), the highest version.</summary>
    private static Dictionary<string, StoredEntry> Model(IEnumerable<StoredEntry> puts)
    {
        var model = new Dictionary<string, StoredEntry>();
        foreach (var e in puts)
        {
            var id = Id(e.Hash, e.Key);
            if (!model.TryGetValue(id, out var held) || e.Value.Version > held.Value.Version)
                model[id] = e;
        }
        return model;
    }

    // ---- put / get ------------------------------------------------------------------------------

    [Fact]
    public void Put_then_get_returns_the_value_and_its_version()
    {
        using var engine = CreateEngine();
        Assert.True(engine.Put(42, "k"u8, V(7, [1, 2, 3], node: 2)));
        var got = engine.Get(42, "k"u8);
        Assert.NotNull(got);
        Assert.Equal(new Version(7, 2), got.Value.Version);
        Assert.Equal([1, 2, 3], got.Value.Value!);
        Assert.Equal(1, engine.Count);
    }

    [Fact]
    public void Values_of_very_different_sizes_in_a_row_each_read_back_whole()
    {
        // Small after large and large after small: an engine that encodes into a buffer it keeps
        // must neither leak one value into the next nor keep a huge buffer wrong.
        int[] sizes = [0, 300, 10, 70_000, 5, 200_000, 1_000, 65_000];
        using var engine = CreateEngine();
        for (var i = 0; i < sizes.Length; i++)
            Assert.True(engine.Put((ulong)i, [(byte)i], V(1, Pattern(sizes[i], i))));
        engine.Flush();
        for (var i = 0; i < sizes.Length; i++)
        {
            var got = engine.Get((ulong)i, [(byte)i]);
            Assert.NotNull(got);
            Assert.Equal(Pattern(sizes[i], i), got.Value.Value!);
        }

        static byte[] Pattern(int size, int seed) => [.. Enumerable.Range(0, size).Select(j => (byte)(j * 7 + seed))];
    }

    [Fact]
    public void Get_of_a_missing_key_returns_null()
    {
        using var engine = CreateEngine();
        Assert.Null(engine.Get(42, "k"u8));
        engine.Put(42, "k"u8, V(1, [1]));
        Assert.Null(engine.Get(42, "j"u8));
        Assert.Null(engine.Get(43, "k"u8));
    }

    [Fact]
    public void Empty_value_is_stored_and_is_not_a_tombstone()
    {
        using var engine = CreateEngine();
        engine.Put(1, "k"u8, V(1, []));
        var got = engine.Get(1, "k"u8)!.Value;
        Assert.False(got.IsTombstone);
        Assert.Empty(got.Value!);
    }

    [Fact]
    public void Binary_keys_with_zero_bytes_are_distinct_keys()
    {
        // DESIGN.md Versions: "Keys and values are binary-safe bytes."
        using var engine = CreateEngine();
        byte[][] keys = [[0], [0, 0], [0, 1], [1, 0], [0x61], [0x61, 0], [0xFF, 0, 0xFF], []];
        for (var i = 0; i < keys.Length; i++)
            Assert.True(engine.Put(7, keys[i], V(1, [(byte)i])));
        Assert.Equal(keys.Length, engine.Count);
        for (var i = 0; i < keys.Length; i++)
            Assert.Equal([(byte)i], engine.Get(7, keys[i])!.Value.Value!);
    }

    [Fact]
    public void Keys_with_equal_hashes_are_stored_separately()
    {
        using var engine = CreateEngine();
        engine.Put(99, "a"u8, V(1, [1]));
        engine.Put(99, "b"u8, V(1, [2]));
        Assert.Equal(2, engine.Count);
        Assert.Equal([1], engine.Get(99, "a"u8)!.Value.Value!);
        Assert.Equal([2], engine.Get(99, "b"u8)!.Value.Value!);
    }

    [Fact]
    public void Versions_of_keys_with_equal_hashes_are_compared_per_key()
    {
        using var engine = CreateEngine();
        Assert.True(engine.Put(7, "a"u8, V(5, [1])));
        Assert.True(engine.Put(7, "b"u8, V(3, [2])));
        Assert.False(engine.Put(7, "a"u8, V(4, [3])), "older than a's version 5, though newer than b's 3");
        Assert.True(engine.Put(7, "b"u8, V(4, [4])), "newer than b's version 3, though older than a's 5");
        Assert.False(engine.RemoveIfVersion(7, "b"u8, new Version(3, 1)));
        Assert.True(engine.RemoveIfVersion(7, "a"u8, new Version(5, 1)));
        Assert.Equal(1, engine.Count);
        Assert.True(engine.Put(7, "a"u8, V(1, [5])), "a was removed: any version of it is new");
        Assert.Equal(2, engine.Count);
        Assert.Equal([5], engine.Get(7, "a"u8)!.Value.Value!);
        Assert.Equal([4], engine.Get(7, "b"u8)!.Value.Value!);
    }

    [Fact]
    public void VersionOf_gives_the_version_held_for_values_tombstones_and_keys_sharing_a_hash()
    {
        using var engine = CreateEngine();
        engine.Put(7, "a"u8, V(5, [1]));
        engine.Put(7, "b"u8, V(3, null));
        engine.Put(8, "c"u8, V(9, [], node: 2));
        Assert.Equal(new Version(5, 1), engine.VersionOf(7, "a"u8));
        Assert.Equal(new Version(3, 1), engine.VersionOf(7, "b"u8));
        Assert.Equal(new Version(9, 2), engine.VersionOf(8, "c"u8));
        Assert.Null(engine.VersionOf(7, "c"u8));
        Assert.Null(engine.VersionOf(9, "a"u8));
        engine.Put(8, "c"u8, V(10, [1]));
        Assert.Equal(new Version(10, 1), engine.VersionOf(8, "c"u8));
        Assert.True(engine.RemoveIfVersion(8, "c"u8, new Version(10, 1)));
        Assert.Null(engine.VersionOf(8, "c"u8));
    }

    [Fact]
    public void Newer_version_replaces_the_stored_one()
    {
        // IStorageEngine: "Engines merge by version".
        using var engine = CreateEngine();
        engine.Put(5, "k"u8, V(10, [1]));
        Assert.True(engine.Put(5, "k"u8, V(11, [2])));
        Assert.Equal(new Version(11, 1), engine.Get(5, "k"u8)!.Value.Version);
        Assert.Equal([2], engine.Get(5, "k"u8)!.Value.Value!);
        // Same timestamp, higher node id is newer (DESIGN.md: "HLC time, then node id").
        Assert.True(engine.Put(5, "k"u8, V(11, [3], node: 2)));
        Assert.Equal([3], engine.Get(5, "k"u8)!.Value.Value!);
        Assert.Equal(1, engine.Count);
    }

    private enum StepKind { Put, Get, Remove, Flush }

    private readonly record struct Step(StepKind Kind, int Key, long Timestamp, int ValueLength);

    private static readonly Gen<Step> GenStep = Gen.Select(
        Gen.Frequency((4, Gen.Const(StepKind.Put)), (5, Gen.Const(StepKind.Get)), (1, Gen.Const(StepKind.Remove)), (2, Gen.Const(StepKind.Flush))),
        Gen.Int[0, 5], Gen.Long[1, 40], Gen.Int[-1, 40],
        (kind, key, ts, length) => new Step(kind, key, ts, length));

    [Fact]
    public void Every_read_sees_the_latest_put_or_removal_however_reads_writes_and_flushes_interleave()
    {
        // IStorageEngine: "Engines merge by version". Reads between writes (which an engine may
        // serve from a cache) and flushes (after which it may no longer find the write staged)
        // must never return what a later write replaced. Six keys over three hashes.
        GenStep.Array[1, 60].Sample(steps =>
        {
            using var engine = CreateEngine();
            var held = new Dictionary<int, VersionedValue>();
            foreach (var s in steps)
            {
                var key = new[] { (byte)s.Key };
                var hash = (ulong)(s.Key % 3);
                switch (s.Kind)
                {
                    case StepKind.Put:
                        var value = V(s.Timestamp, s.ValueLength < 0 ? null : [.. Enumerable.Repeat((byte)s.Timestamp, s.ValueLength)]);
                        var newer = !held.TryGetValue(s.Key, out var before) || value.Version > before.Version;
                        Assert.Equal(newer, engine.Put(hash, key, value));
                        if (newer)
                            held[s.Key] = value;
                        break;
                    case StepKind.Remove:
                        if (held.TryGetValue(s.Key, out var current) && engine.RemoveIfVersion(hash, key, current.Version))
                            held.Remove(s.Key);
                        break;
                    case StepKind.Flush:
                        engine.Flush();
                        break;
                }
                var got = engine.Get(hash, key);
                if (held.TryGetValue(s.Key, out var expected))
                {
                    Assert.Equal(expected.Version, got?.Version);
                    Assert.Equal(expected.Value, got?.Value);
                }
                else
                    Assert.Null(got);
            }
        }, iter: PropertyIterations, threads: 1);
    }

    [Fact]
    public void Older_or_equal_version_is_ignored_and_put_returns_false()
    {
        // IStorageEngine: "a put whose version is not newer than the stored one is a no-op."
        using var engine = CreateEngine();
        engine.Put(5, "k"u8, V(10, [1], node: 2));
        Assert.False(engine.Put(5, "k"u8, V(9, [2], node: 3)));
        Assert.False(engine.Put(5, "k"u8, V(10, [3], node: 1)));
        Assert.False(engine.Put(5, "k"u8, V(10, [4], node: 2)));
        var got = engine.Get(5, "k"u8)!.Value;
        Assert.Equal(new Version(10, 2), got.Version);
        Assert.Equal([1], got.Value!);
    }

    [Fact]
    public void Tombstones_are_stored_counted_and_returned()
    {
        // DESIGN.md Versions: "Delete writes a tombstone version"; IStorageEngine.Count: "tombstones included".
        using var engine = CreateEngine();
        engine.Put(5, "k"u8, V(10, [1]));
        Assert.True(engine.Put(5, "k"u8, V(11, null)));
        var got = engine.Get(5, "k"u8)!.Value;
        Assert.True(got.IsTombstone);
        Assert.Equal(new Version(11, 1), got.Version);
        Assert.Equal(1, engine.Count);
        // An older value does not resurrect the key.
        Assert.False(engine.Put(5, "k"u8, V(10, [9], node: 3)));
        Assert.True(engine.Get(5, "k"u8)!.Value.IsTombstone);
        // A tombstone for a key never seen is stored too.
        Assert.True(engine.Put(6, "x"u8, V(1, null)));
        Assert.Equal(2, engine.Count);
        var scanned = new List<StoredEntry>();
        engine.Scan(new HashRange(0, 0), null, 100, 1 << 20, scanned);
        Assert.Equal(2, scanned.Count);
        Assert.All(scanned, e => Assert.True(e.Value.IsTombstone));
    }

    [Fact]
    public void RemoveIfVersion_removes_a_key_held_at_exactly_that_version()
    {
        // IStorageEngine.RemoveIfVersion: compare-and-delete, used to purge a tombstone.
        using var engine = CreateEngine();
        engine.Put(5, "k"u8, V(11, null));
        engine.Put(5, "other"u8, V(11, null));
        Assert.True(engine.RemoveIfVersion(5, "k"u8, new Version(11, 1)));
        Assert.Null(engine.Get(5, "k"u8));
        Assert.Equal(1, engine.Count);
        Assert.NotNull(engine.Get(5, "other"u8));
        var scanned = new List<StoredEntry>();
        engine.Scan(new HashRange(0, 0), null, 100, 1 << 20, scanned);
        Assert.Equal(["other"u8.ToArray()], scanned.Select(e => e.Key));
        // Removed once: a second removal finds nothing.
        Assert.False(engine.RemoveIfVersion(5, "k"u8, new Version(11, 1)));
        // The key can be written again afterwards, at any version.
        Assert.True(engine.Put(5, "k"u8, V(3, [1])));
        Assert.Equal(2, engine.Count);
    }

    [Fact]
    public void RemoveIfVersion_keeps_a_newer_or_older_version_and_ignores_missing_keys()
    {
        using var engine = CreateEngine();
        engine.Put(5, "k"u8, V(12, [1]));
        // A newer write arrived after the tombstone of version 11: it survives.
        Assert.False(engine.RemoveIfVersion(5, "k"u8, new Version(11, 1)));
        // Same timestamp, other node: a different version.
        Assert.False(engine.RemoveIfVersion(5, "k"u8, new Version(12, 2)));
        Assert.False(engine.RemoveIfVersion(5, "k"u8, new Version(13, 1)));
        Assert.Equal(new Version(12, 1), engine.Get(5, "k"u8)!.Value.Version);
        Assert.False(engine.RemoveIfVersion(6, "k"u8, new Version(12, 1)));
        Assert.False(engine.RemoveIfVersion(5, "missing"u8, new Version(12, 1)));
        Assert.Equal(1, engine.Count);
    }

    [Fact]
    public void Count_counts_keys_not_puts()
    {
        using var engine = CreateEngine();
        Assert.Equal(0, engine.Count);
        engine.Put(1, "a"u8, V(1, [1]));
        engine.Put(1, "a"u8, V(2, [1]));
        engine.Put(1, "a"u8, V(1, [1]));
        engine.Put(2, "a"u8, V(1, [1]));
        Assert.Equal(2, engine.Count);
    }

    [Fact]
    public void Put_keeps_its_own_copy_of_the_key()
    {
        using var engine = CreateEngine();
        var key = new byte[] { 1, 2, 3 };
        engine.Put(3, key, V(1, [1]));
        key[0] = 9;
        Assert.NotNull(engine.Get(3, [1, 2, 3]));
        Assert.Null(engine.Get(3, key));
    }

    [Fact]
    public void Engine_has_a_name_and_flush_succeeds()
    {
        using var engine = CreateEngine();
        Assert.False(string.IsNullOrWhiteSpace(engine.Name));
        engine.Put(1, "a"u8, V(1, [1]));
        engine.Flush();
        Assert.NotNull(engine.Get(1, "a"u8));
    }

    // ---- scan -----------------------------------------------------------------------------------

    private static readonly ulong[] Hashes = [0, 5, 10, 15, 20, 25, ulong.MaxValue - 5, ulong.MaxValue];

    private static IStorageEngine Filled(IStorageEngine engine)
    {
        PutAll(engine, Hashes.Select(h => E(h, BitConverter.GetBytes(h))));
        return engine;
    }

    private static ulong[] ScanHashes(IStorageEngine engine, HashRange range)
    {
        var into = new List<StoredEntry>();
        Assert.Null(engine.Scan(range, null, 1000, 1 << 20, into));
        return [.. into.Select(e => e.Hash)];
    }

    [Fact]
    public void Scan_of_a_non_wrapping_range_returns_start_exclusive_end_inclusive_in_order()
    {
        using var engine = Filled(CreateEngine());
        Assert.Equal([15UL, 20UL], ScanHashes(engine, new HashRange(10, 20)));
        Assert.Equal([0UL, 5UL], ScanHashes(engine, new HashRange(ulong.MaxValue, 5)));
    }

    [Fact]
    public void Scan_of_a_wrapping_range_runs_from_after_start_through_the_top_and_on_from_zero()
    {
        using var engine = Filled(CreateEngine());
        Assert.Equal([ulong.MaxValue, 0UL, 5UL], ScanHashes(engine, new HashRange(ulong.MaxValue - 5, 5)));
        Assert.Equal([ulong.MaxValue - 5, ulong.MaxValue, 0UL, 5UL, 10UL], ScanHashes(engine, new HashRange(25, 10)));
    }

    [Fact]
    public void Scan_of_the_full_ring_returns_everything_starting_after_start()
    {
        using var engine = Filled(CreateEngine());
        Assert.Equal([15UL, 20UL, 25UL, ulong.MaxValue - 5, ulong.MaxValue, 0UL, 5UL, 10UL], ScanHashes(engine, new HashRange(10, 10)));
        Assert.Equal(Hashes, ScanHashes(engine, new HashRange(ulong.MaxValue, ulong.MaxValue)));
        Assert.Equal([5UL, 10UL, 15UL, 20UL, 25UL, ulong.MaxValue - 5, ulong.MaxValue, 0UL], ScanHashes(engine, new HashRange(0, 0)));
    }

    [Fact]
    public void Scan_of_an_empty_range_returns_nothing_and_a_null_cursor()
    {
        using var engine = Filled(CreateEngine());
        var into = new List<StoredEntry>();
        Assert.Null(engine.Scan(new HashRange(10, 14), null, 10, 1000, into));
        Assert.Empty(into);
        using var empty = CreateEngine();
        Assert.Null(empty.Scan(new HashRange(3, 3), null, 10, 1000, into));
        Assert.Empty(into);
    }

    [Fact]
    public void Scan_appends_to_the_list_it_is_given()
    {
        using var engine = Filled(CreateEngine());
        var marker = E(12345, [9, 9]);
        var into = new List<StoredEntry> { marker };
        var cursor = engine.Scan(new HashRange(0, 0), null, 2, 1 << 20, into);
        Assert.NotNull(cursor);
        Assert.Equal(3, into.Count);
        Assert.Equal(marker, into[0]);
        Assert.Equal([5UL, 10UL], into.Skip(1).Select(e => e.Hash));
        into.Clear();
        engine.Scan(new HashRange(0, 0), cursor, 2, 1 << 20, into);
        Assert.Equal([15UL, 20UL], into.Select(e => e.Hash));
    }

    [Fact]
    public void Paged_scan_by_one_entry_visits_a_wrapping_range_in_ring_order()
    {
        using var engine = Filled(CreateEngine());
        var all = ScanAll(engine, new HashRange(20, 10), 1, 1 << 20);
        Assert.Equal([25UL, ulong.MaxValue - 5, ulong.MaxValue, 0UL, 5UL, 10UL], all.Select(e => e.Hash));
    }

    [Fact]
    public void Scan_returns_at_least_one_entry_even_when_it_is_larger_than_max_bytes()
    {
        using var engine = CreateEngine();
        engine.Put(1, "k"u8, V(1, new byte[100]));
        engine.Put(2, "l"u8, V(1, new byte[100]));
        var into = new List<StoredEntry>();
        var cursor = engine.Scan(new HashRange(0, 0), null, 10, 10, into);
        Assert.Single(into);
        Assert.NotNull(cursor);
    }

    [Fact]
    public void Paged_scans_return_every_entry_of_the_range_exactly_once_in_ring_order()
    {
        // IStorageEngine.Scan: "Up to maxEntries entries (and about maxBytes ..., at least one entry) of
        // range in ring order after after. Returns the cursor for the next call, or null when the
        // range is exhausted."
        Gen.Select(GenEntries, GenRange, Gen.Int[1, 5], Gen.Int[1, 60]).Sample((puts, range, maxEntries, maxBytes) =>
        {
            using var engine = CreateEngine();
            PutAll(engine, puts);
            var expected = Model(puts).Values.Where(e => range.Contains(e.Hash)).ToList();
            var all = ScanAll(engine, range, maxEntries, maxBytes);

            Assert.Equal(expected.Count, all.Count);
            Assert.Equal(
                expected.Select(e => Id(e.Hash, e.Key)).Order(),
                all.Select(e => Id(e.Hash, e.Key)).Order());
            var model = Model(puts);
            foreach (var e in all)
            {
                Assert.Equal(model[Id(e.Hash, e.Key)].Value.Version, e.Value.Version);
                Assert.Equal(model[Id(e.Hash, e.Key)].Value.Value, e.Value.Value);
            }
            for (var i = 1; i < all.Count; i++)
            {
                Assert.True(RingRank(range, all[i - 1].Hash) <= RingRank(range, all[i].Hash),
                    $"{range}: {all[i - 1].Hash:x16} came before {all[i].Hash:x16}");
            }
        }, iter: PropertyIterations, threads: 1);
    }

    // ---- bucket digests (anti-entropy) ------------------------------------------------------------

    [Fact]
    public void Bucket_digests_and_tombstone_counts_follow_puts_removals_and_drops()
    {
        // IStorageEngine.BucketDigest: "the XOR of EntryDigest over the entries held in bucket, kept
        // up to date by every put, removal and drop"; BucketTombstones: how many of them are
        // tombstones, "kept up to date like BucketDigest". Values overwrite tombstones and back.
        Gen.Select(GenEntries, GenEntries, GenRange).Sample((puts, more, range) =>
        {
            using var engine = CreateEngine();
            if (engine.BucketDigest(0) is null || engine.BucketTombstones(0) is null)
                return; // This engine keeps none: anti-entropy and purges read it instead.
            PutAll(engine, puts);
            foreach (var e in puts.Where((_, i) => i % 3 == 0))
            {
                if (engine.Get(e.Hash, e.Key) is { } held)
                    engine.RemoveIfVersion(e.Hash, e.Key, held.Version);
            }
            engine.DropRange(range);
            PutAll(engine, more);

            var digests = new ulong[AntiEntropy.Buckets];
            var tombstones = new int[AntiEntropy.Buckets];
            foreach (var e in ScanAll(engine, new HashRange(0, 0), int.MaxValue, int.MaxValue))
            {
                digests[AntiEntropy.BucketOf(e.Hash)] ^= AntiEntropy.EntryDigest(e);
                tombstones[AntiEntropy.BucketOf(e.Hash)] += e.Value.IsTombstone ? 1 : 0;
            }
            for (var b = 0; b < AntiEntropy.Buckets; b++)
            {
                Assert.True(digests[b] == engine.BucketDigest(b), $"bucket {b}: digest {engine.BucketDigest(b):x16}, entries give {digests[b]:x16}");
                Assert.True(tombstones[b] == engine.BucketTombstones(b), $"bucket {b}: {engine.BucketTombstones(b)} tombstones counted, entries hold {tombstones[b]}");
            }
            Assert.Equal(tombstones.Sum(), engine.TombstoneCount);
        }, iter: PropertyIterations, threads: 1);
    }

    [Fact]
    public void Summaries_from_bucket_digests_equal_summaries_read_entry_by_entry()
    {
        Gen.Select(GenEntries, GenRange).Sample((puts, range) =>
        {
            using var engine = CreateEngine();
            PutAll(engine, puts);
            var summary = AntiEntropy.Summarise(engine, range, out var read);
            Assert.Equal(AntiEntropy.Summarise(new WithoutDigests(engine), range, out var all), summary);
            Assert.True(read <= all);
        }, iter: PropertyIterations, threads: 1);
    }

    /// <summary>The engine as one that keeps no bucket digests: anti-entropy reads every entry.</summary>
    private sealed class WithoutDigests(IStorageEngine inner) : IStorageEngine
    {
        public string Name => inner.Name;
        public long Count => inner.Count;
        public VersionedValue? Get(ulong hash, ReadOnlySpan<byte> key) => inner.Get(hash, key);
        public bool Put(ulong hash, ReadOnlySpan<byte> key, VersionedValue value) => inner.Put(hash, key, value);
        public ScanCursor? Scan(HashRange range, ScanCursor? after, int maxEntries, int maxBytes, List<StoredEntry> into) =>
            inner.Scan(range, after, maxEntries, maxBytes, into);
        public bool RemoveIfVersion(ulong hash, ReadOnlySpan<byte> key, Version version) => inner.RemoveIfVersion(hash, key, version);
        public long DropRange(HashRange range) => inner.DropRange(range);
        public void Flush() => inner.Flush();
        public void Dispose()
        {
        }
    }

    // ---- drop -----------------------------------------------------------------------------------

    [Fact]
    public void DropRange_removes_exactly_the_range()
    {
        // DESIGN.md Membership: "nodes that no longer own a range drop it."
        Gen.Select(GenEntries, GenRange).Sample((puts, range) =>
        {
            using var engine = CreateEngine();
            PutAll(engine, puts);
            var model = Model(puts);
            var inRange = model.Values.Count(e => range.Contains(e.Hash));
            Assert.Equal(inRange, engine.DropRange(range));
            Assert.Equal(model.Count - inRange, engine.Count);
            foreach (var e in model.Values)
            {
                var held = engine.Get(e.Hash, e.Key);
                if (range.Contains(e.Hash))
                    Assert.Null(held);
                else
                    Assert.Equal(e.Value.Version, held?.Version);
            }
            var rest = new List<StoredEntry>();
            engine.Scan(range, null, int.MaxValue, int.MaxValue, rest);
            Assert.Empty(rest);
        }, iter: PropertyIterations, threads: 1);
    }

    [Fact]
    public void DropRange_of_the_full_ring_empties_the_engine()
    {
        using var engine = Filled(CreateEngine());
        Assert.Equal(Hashes.Length, engine.DropRange(new HashRange(7, 7)));
        Assert.Equal(0, engine.Count);
    }

    [Fact]
    public void Dropped_keys_can_be_written_again()
    {
        using var engine = Filled(CreateEngine());
        engine.DropRange(new HashRange(0, 10));
        Assert.True(engine.Put(5, BitConverter.GetBytes(5UL), V(1, [1])));
        Assert.NotNull(engine.Get(5, BitConverter.GetBytes(5UL)));
    }
}
