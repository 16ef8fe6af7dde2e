using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using GTStore.Core;
using Microsoft.Win32.SafeHandles;
using RocksDbSharp;

namespace GTStore.Storage;

/// <summary>
/// The durable engine's own write-ahead log, and the table of the writes in it: the engine's
/// write path when the log is not synced per write (<see cref="FsyncMode.Batch"/>,
/// <see cref="FsyncMode.None"/>). A write is appended to one array as a record; the array is the
/// log: the bytes appended since the last <see cref="WriteOut"/> go to the file in one write(2).
/// The latest record of each key is found through a table from ring hash to record position.
/// When the log is big enough the latest records are written, sorted, as one RocksDB table file
/// (<see cref="WriteTable"/>), which the engine ingests, and the log starts again empty
/// (<see cref="Clear"/>). A put thus costs a copy and a table entry instead of an insert into
/// RocksDB's skip list per replica, and a key written many times between two tables reaches
/// RocksDB once.
/// </summary>
/// <remarks>
/// A record: CRC-32 of the rest (u32 LE), stored key length (i32 LE), stored value length (i32
/// LE; -1 for a removal), the stored key, the stored value (<see cref="StoredValue"/>). On open the
/// file is read back up to the first record that is cut short or fails its CRC (the tail of a
/// write a crash interrupted, never acknowledged), and the file is cut there.
/// </remarks>
internal sealed class WriteLog : IDisposable
{
    public const int RecordHeaderBytes = 4 + 4 + 4;
    private const int RemovalLength = -1;
    private const int InitialBytes = 64 * 1024;
    /// <summary>A records array bigger than this (grown by a huge value) is not kept for the next table's records.</summary>
    private const int MaxRecordsKept = 4 * InitialBytes * 256;
    /// <summary>Largest table handed to the next log: a million slots, a log of very small records.</summary>
    private const long MaxTableBytesKept = 16L << 20;

    private string _path;
    private readonly SafeFileHandle _file;
    private byte[] _records;
    private int _length;
    private int _written;
    private bool _unsynced;
    private RingHashMap<int> _byHash;
    /// <summary>Keys whose ring hash another key in <see cref="_byHash"/> holds (rare: 64-bit hashes).</summary>
    private Dictionary<byte[], int>? _sharedHash;

    /// <summary>
    /// Opens the log at <paramref name="path"/> (created if missing) and reads back what it holds,
    /// into the spare parts of an earlier log when given (<see cref="Detach"/>) and big enough.
    /// </summary>
    public WriteLog(string path, Spare? spare = null)
    {
        _path = path;
        _byHash = spare?.Table ?? new RingHashMap<int>();
        var records = spare?.Records;
        _file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite);
        var length = RandomAccess.GetLength(_file);
        if (length > Array.MaxLength / 2)
            throw new InvalidDataException($"write log {path} is {length} bytes, more than the {Array.MaxLength / 2} it can hold");
        _records = records is not null && records.Length >= length ? records : new byte[Math.Max(InitialBytes, (int)length)];
        var read = 0;
        while (read < length)
        {
            var n = RandomAccess.Read(_file, _records.AsSpan(read, (int)length - read), read);
            if (n == 0)
                break;
            read += n;
        }
        var at = 0;
        while (RecordLengthAt(at, read) is { } recordLength)
        {
            Index(at);
            at += recordLength;
        }
        _length = _written = at;
        if (at < length)
        {
            RandomAccess.SetLength(_file, at);
            Sync();
        }
    }

    /// <summary>Bytes of records held (every write since the last table, superseded ones included).</summary>
    public int Length => _length;

    public bool IsEmpty => _length == 0;

    /// <summary>Keys with a record (the latest of each).</summary>
    public int Count => _byHash.Count + (_sharedHash?.Count ?? 0);

    /// <summary>Appends a put (<paramref name="value"/>) or a removal (null) and makes it the key's latest record.</summary>
    public void Append(ulong hash, ReadOnlySpan<byte> key, VersionedValue? value)
    {
        var at = AppendUnindexed(hash, key, value);
        Index(at);
    }

    /// <summary>
    /// Appends a record that lookups do not see until <see cref="IndexLast"/>: a write that must
    /// reach the file before it counts (<see cref="DiscardUnwritten"/> takes it back).
    /// </summary>
    public int AppendUnindexed(ulong hash, ReadOnlySpan<byte> key, VersionedValue? value)
    {
        var keyLength = StoredValue.HashBytes + key.Length;
        var valueLength = value is { } v ? StoredValue.LengthOf(v) : RemovalLength;
        var recordLength = RecordHeaderBytes + keyLength + Math.Max(valueLength, 0);
        Reserve(recordLength);
        var at = _length;
        var record = _records.AsSpan(at, recordLength);
        BinaryPrimitives.WriteInt32LittleEndian(record[4..], keyLength);
        BinaryPrimitives.WriteInt32LittleEndian(record[8..], valueLength);
        StoredValue.WriteKey(record[RecordHeaderBytes..], hash, key);
        if (value is { } put)
            StoredValue.Encode(record[(RecordHeaderBytes + keyLength)..], put);
        BinaryPrimitives.WriteUInt32LittleEndian(record, Crc32.HashToUInt32(record[4..]));
        _length += recordLength;
        return at;
    }

    /// <summary>Makes the record at <paramref name="at"/> (from <see cref="AppendUnindexed"/>) its key's latest.</summary>
    public void IndexLast(int at) => Index(at);

    /// <summary>Starts loading the ring hash's table slot (<see cref="RingHashMap{TValue}.Prefetch"/>).</summary>
    public void Prefetch(ulong hash) => _byHash.Prefetch(hash);

    /// <summary>
    /// The latest record of the key: false when it has none here; else <paramref name="removed"/>
    /// says whether it is a removal, and <paramref name="stored"/> is its stored value (valid until
    /// the next append).
    /// </summary>
    public bool TryFind(ulong hash, ReadOnlySpan<byte> key, out bool removed, out ReadOnlySpan<byte> stored)
    {
        if (!(_byHash.TryGetValue(hash, out var at) && KeyAt(at)[StoredValue.HashBytes..].SequenceEqual(key)
              || _sharedHash is not null && _sharedHash.TryGetValue(StoredValue.Key(hash, key), out at)))
        {
            removed = false;
            stored = default;
            return false;
        }
        var valueLength = ValueLengthAt(at);
        removed = valueLength == RemovalLength;
        stored = removed ? default : _records.AsSpan(at + RecordHeaderBytes + KeyLengthAt(at), valueLength);
        return true;
    }

    /// <summary>Calls <paramref name="each"/> with every key's latest record, in no order.</summary>
    public void ForEachLatest(LatestRecord each)
    {
        foreach (var at in Latest())
            each(HashAt(at), KeyAt(at)[StoredValue.HashBytes..], ValueLengthAt(at) == RemovalLength, StoredValueAt(at));
    }

    /// <summary>
    /// The latest record of every key whose ring hash is in [<paramref name="low"/>, <paramref name="high"/>]
    /// and whose stored key sorts after <paramref name="after"/> (when given), sorted by stored key.
    /// </summary>
    public List<(byte[] StoredKey, VersionedValue? Value)> LatestIn(ulong low, ulong high, byte[]? after)
    {
        var found = new List<(byte[] StoredKey, VersionedValue? Value)>();
        if (high - low < (ulong)_byHash.Count)
        {
            // A range narrower than the keys held (a stray copy's one hash, a small repair):
            // each of its hashes is looked up instead of every record read.
            for (var hash = low; ; hash++)
            {
                if (_byHash.TryGetValue(hash, out var at))
                    AddIfIn(at);
                if (hash == high)
                    break;
            }
            foreach (var at in _sharedHash?.Values ?? Enumerable.Empty<int>())
                AddIfIn(at);
        }
        else
        {
            foreach (var at in Latest())
                AddIfIn(at);
        }
        found.Sort((a, b) => a.StoredKey.AsSpan().SequenceCompareTo(b.StoredKey));
        return found;

        void AddIfIn(int at)
        {
            var hash = HashAt(at);
            if (hash < low || hash > high || after is not null && KeyAt(at).SequenceCompareTo(after) <= 0)
                return;
            found.Add((KeyAt(at).ToArray(), ValueLengthAt(at) == RemovalLength ? null : StoredValue.Decode(StoredValueAt(at))));
        }
    }

    public delegate void LatestRecord(ulong hash, ReadOnlySpan<byte> key, bool removed, ReadOnlySpan<byte> stored);

    /// <summary>Hands the records appended since the last call to the file (one write(2)); throws <see cref="IOException"/> if it fails.</summary>
    public void WriteOut()
    {
        if (_written == _length)
            return;
        RandomAccess.Write(_file, _records.AsSpan(_written, _length - _written), _written);
        _written = _length;
        _unsynced = true;
    }

    /// <summary>fsyncs what <see cref="WriteOut"/> wrote, checking the result; a no-op when nothing is unsynced.</summary>
    public void SyncWritten()
    {
        if (_unsynced)
            Sync();
        _unsynced = false;
    }

    /// <summary>
    /// Takes back every record not yet written out (their write failed, so none was
    /// acknowledged): the table is rebuilt from the records kept, and the file cut to them.
    /// </summary>
    public void DiscardUnwritten()
    {
        if (_written == _length)
            return;
        _length = _written;
        ClearTable();
        for (var at = 0; at < _length; at += RecordLengthAt(at, _length)!.Value)
            Index(at);
        try
        {
            RandomAccess.SetLength(_file, _written); // A partly written record would be cut on open anyway.
        }
        catch (IOException)
        {
        }
    }

    /// <summary>
    /// Writes every key's latest record, sorted by stored key, as a RocksDB table file at
    /// <paramref name="tablePath"/> (a removal as a deletion), with <paramref name="options"/>' table
    /// format; false (and no file) when the log holds nothing.
    /// </summary>
    public bool WriteTable(string tablePath, DbOptions options)
    {
        var latest = SortedLatest();
        if (latest.Length == 0)
            return false;
        var native = Native.Instance;
        var env = native.rocksdb_envoptions_create();
        var writer = native.rocksdb_sstfilewriter_create(env, options.Handle);
        var pinned = GCHandle.Alloc(_records, GCHandleType.Pinned);
        try
        {
            native.rocksdb_sstfilewriter_open(writer, tablePath, out var error);
            Check(error, "creating table file " + tablePath);
            var records = pinned.AddrOfPinnedObject();
            for (var i = 0; i < latest.Length; i++)
            {
                // Records are read in key order, at random in the array: each is loaded a few
                // records ahead, so that the misses overlap.
                if (i + RecordsPrefetchedAhead < latest.Length)
                {
                    var ahead = records + latest[i + RecordsPrefetchedAhead];
                    PrefetchLine(ahead);
                    PrefetchLine(ahead + 64); // A 100-byte value's record spans two or three lines; these are the first two.
                }
                var at = latest[i];
                var keyLength = KeyLengthAt(at);
                var key = records + at + RecordHeaderBytes;
                var valueLength = ValueLengthAt(at);
                if (valueLength == RemovalLength)
                    native.rocksdb_sstfilewriter_delete(writer, key, (UIntPtr)keyLength, out error);
                else
                    native.rocksdb_sstfilewriter_put(writer, key, (UIntPtr)keyLength, key + keyLength, (UIntPtr)valueLength, out error);
                Check(error, "writing table file " + tablePath);
            }
            native.rocksdb_sstfilewriter_finish(writer, out error);
            Check(error, "finishing table file " + tablePath);
        }
        finally
        {
            pinned.Free();
            native.rocksdb_sstfilewriter_destroy(writer);
            native.rocksdb_envoptions_destroy(env);
        }
        return true;
    }

    /// <summary>Empties the log, its file too (cut and synced): its records are in RocksDB now.</summary>
    public void Clear()
    {
        RandomAccess.SetLength(_file, 0);
        Sync();
        _length = _written = 0;
        _unsynced = false;
        ClearTable();
        if (_records.Length > MaxRecordsKept)
            _records = new byte[InitialBytes]; // After a huge value: do not keep its room.
    }

    /// <summary>
    /// Renames the log's file to <paramref name="path"/> (in the same directory) and makes the
    /// rename durable; the log keeps its handle and records.
    /// </summary>
    public void MoveTo(string path)
    {
        File.Move(_path, path);
        _path = path;
        Fsync.Directory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Removes the log's file, durably: its records are in RocksDB now. The log stays readable until disposed.</summary>
    public void Delete()
    {
        File.Delete(_path);
        Fsync.Directory(Path.GetDirectoryName(Path.GetFullPath(_path))!);
    }

    /// <summary>What a log hands to the next one: its records array and its table, emptied (either null when it grew huge).</summary>
    public sealed record Spare(byte[]? Records, RingHashMap<int>? Table);

    /// <summary>
    /// Hands over the records array and the table for another log to reuse, leaving this log
    /// empty: call it only once nothing reads this log any more. Reusing the table spares the
    /// next log growing one from 16 slots, and the native memory of a table left to the
    /// finalizer of a log that the collector may not reach for minutes.
    /// </summary>
    public Spare Detach()
    {
        var records = _records;
        _records = [];
        _length = _written = 0;
        ClearTable();
        var table = _byHash;
        _byHash = new RingHashMap<int>();
        if (table.TableBytes > MaxTableBytesKept)
        {
            table.Dispose();
            table = null;
        }
        return new Spare(records.Length > MaxRecordsKept ? null : records, table);
    }

    public void Dispose() => _file.Dispose();

    /// <summary>
    /// Every key's latest record, sorted by stored key: by ring hash (a sort of plain numbers, as
    /// a stored key starts with its hash in big-endian order), then by key among equal hashes.
    /// </summary>
    private int[] SortedLatest()
    {
        // The hashes come from the table's keys, in one pass over it: read from each record,
        // every one of them was a memory miss into the records array.
        var count = Count;
        var hashes = new ulong[count];
        var latest = new int[count];
        var n = _byHash.CopyTo(hashes, latest);
        foreach (var at in _sharedHash?.Values ?? Enumerable.Empty<int>())
        {
            hashes[n] = HashAt(at);
            latest[n++] = at;
        }
        Array.Sort(hashes, latest);
        for (var i = 1; i < latest.Length; i++)
        {
            if (hashes[i] != hashes[i - 1])
                continue;
            var end = i + 1;
            while (end < latest.Length && hashes[end] == hashes[i])
                end++;
            Array.Sort(latest, i - 1, end - i + 1, Comparer<int>.Create((a, b) => KeyAt(a).SequenceCompareTo(KeyAt(b))));
            i = end - 1;
        }
        return latest;
    }

    private IEnumerable<int> Latest() => _sharedHash is null ? _byHash.Values : _byHash.Values.Concat(_sharedHash.Values);

    private void ClearTable()
    {
        _byHash.Clear();
        _sharedHash = null;
    }

    private void Index(int at)
    {
        var hash = HashAt(at);
        ref var held = ref _byHash.GetValueRefOrAddDefault(hash, out var exists);
        if (!exists || KeyAt(held).SequenceEqual(KeyAt(at)))
            held = at;
        else
            (_sharedHash ??= new Dictionary<byte[], int>(StoredKeyComparer.Instance))[KeyAt(at).ToArray()] = at;
    }

    private void Reserve(int recordLength)
    {
        if (_length + recordLength <= _records.Length)
            return;
        if ((long)_length + recordLength > Array.MaxLength)
            throw new StorageException($"the write log holds {_length} bytes and cannot take a record of {recordLength} more");
        var grown = new byte[(int)Math.Min(Array.MaxLength, Math.Max(2L * _records.Length, (long)_length + recordLength))];
        _records.AsSpan(0, _length).CopyTo(grown);
        _records = grown;
    }

    /// <summary>The length of a whole, intact record at <paramref name="at"/> within the first <paramref name="end"/> bytes, or null.</summary>
    private int? RecordLengthAt(int at, int end)
    {
        if (end - at < RecordHeaderBytes)
            return null;
        var keyLength = KeyLengthAt(at);
        var valueLength = ValueLengthAt(at);
        if (keyLength < StoredValue.HashBytes || valueLength < RemovalLength || valueLength is > RemovalLength and < StoredValue.HeaderBytes)
            return null;
        var length = (long)RecordHeaderBytes + keyLength + Math.Max(valueLength, 0);
        if (length > end - at)
            return null;
        var record = _records.AsSpan(at, (int)length);
        return Crc32.HashToUInt32(record[4..]) == BinaryPrimitives.ReadUInt32LittleEndian(record) ? (int)length : null;
    }

    private int KeyLengthAt(int at) => BinaryPrimitives.ReadInt32LittleEndian(_records.AsSpan(at + 4));

    private int ValueLengthAt(int at) => BinaryPrimitives.ReadInt32LittleEndian(_records.AsSpan(at + 8));

    private ReadOnlySpan<byte> KeyAt(int at) => _records.AsSpan(at + RecordHeaderBytes, KeyLengthAt(at));

    private ulong HashAt(int at) => BinaryPrimitives.ReadUInt64BigEndian(_records.AsSpan(at + RecordHeaderBytes));

    private ReadOnlySpan<byte> StoredValueAt(int at) =>
        ValueLengthAt(at) is var n and >= 0 ? _records.AsSpan(at + RecordHeaderBytes + KeyLengthAt(at), n) : default;

    /// <summary>How far ahead of the table writer records are loaded.</summary>
    private const int RecordsPrefetchedAhead = 8;

    private static unsafe void PrefetchLine(IntPtr address)
    {
        if (Sse.IsSupported)
            Sse.Prefetch0((void*)address);
    }

    private void Sync() => Fsync.File(_file, "the write log " + _path);

    private static void Check(IntPtr error, string what)
    {
        if (error == IntPtr.Zero)
            return;
        var message = Marshal.PtrToStringUTF8(error) ?? "unknown error";
        Native.Instance.rocksdb_free(error);
        throw new StorageException(what + " failed: " + message);
    }

}
