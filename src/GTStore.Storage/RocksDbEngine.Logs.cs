using System.Runtime.InteropServices;
using GTStore.Core;
using RocksDbSharp;

namespace GTStore.Storage;

/// <summary>
/// The logs of <see cref="RocksDbEngine"/>: writing the write log out and syncing it once per loop
/// step (or RocksDB's own log, with fsync always), sealing a full log and turning it into a table
/// on another thread, and reading what the logs hold that RocksDB does not yet.
/// </summary>
public sealed partial class RocksDbEngine
{
    // Fsync none and batch: puts and removals go to the write log, handed to the OS when the loop
    // step ends (FlushWal); reads find them there until they are in a table. All calls come from
    // the node's loop in these modes. A full log is sealed: its table is written and ingested on
    // another thread (_tabling) while a new log takes the writes; reads look in the new log, then
    // the sealed one, then RocksDB. Nothing writes the sealed log, so the two threads share it
    // read-only; a removal of a key it holds is a record in the new log.
    private WriteLog? _log;
    private WriteLog? _sealed;
    private Task? _tabling;
    // The records array and table of the last sealed log once its table is in, for the next log to reuse.
    private WriteLog.Spare? _spare;

    private readonly int _logBytesPerTable;
    /// <summary>Log length at which the next table is started (past <see cref="_logBytesPerTable"/> while a failed table waits to be retried).</summary>
    private int _nextTableAt;

    /// <summary>Why the last write of the log failed; until a write succeeds again, each put writes the log at once and fails with it.</summary>
    private string? _logFailed;

    /// <summary>Bytes of records in the write log, not yet in a table (0 with fsync always).</summary>
    internal int LoggedBytes
    {
        get
        {
            lock (_index)
                return (_log?.Length ?? 0) + (_sealed?.Length ?? 0);
        }
    }

    /// <summary>When set (tests), a table is written from a sealed log only once this is set: the sealed state can be held.</summary>
    internal ManualResetEventSlim? TableGate { get; set; }

    /// <summary>Waits until the table being written from a sealed log, if any, is in RocksDB (tests).</summary>
    internal void AwaitTable()
    {
        lock (_index)
            ReleaseTable(wait: true);
    }

    /// <summary>
    /// Makes every write appended before the call durable with one fsync of the log (group
    /// commit); in <see cref="FsyncMode.None"/> only hands them to the OS (<see cref="FlushWal"/>).
    /// A no-op when nothing is pending. Safe to call from another thread than the writer's in
    /// <see cref="FsyncMode.Always"/>.
    /// </summary>
    public void SyncPending()
    {
        if (_fsync == FsyncMode.None)
            FlushWal();
        else if (_log is not null)
            SyncLog();
        else
            WriteWalUpTo(ref _syncedSeq, sync: true);
    }

    /// <summary>
    /// Hands every write made before the call to the OS (one write(2) of the write log, no
    /// fsync), so that a crash of this process cannot lose it, and turns a full log into a table.
    /// A no-op when nothing is new. The host calls it after each batch of inputs, before their
    /// acknowledgements leave (in <see cref="FsyncMode.Always"/> it calls <see cref="SyncPending"/> instead).
    /// </summary>
    /// <exception cref="StorageException">The write to the log file failed.</exception>
    public void FlushWal()
    {
        if (_log is null)
        {
            WriteWalUpTo(ref _walWrittenSeq, sync: false);
            return;
        }
        lock (_index)
        {
            WriteOutLog();
            ReleaseTable(wait: false);
            if (_log.Length >= _nextTableAt)
                StartTable();
        }
    }

    /// <summary>
    /// Seals the full log (a new one takes the writes) and writes its table on another thread.
    /// The table before it, if still being written, is waited for: tables must be ingested in
    /// the order of their logs, newer records on top. A sealed log whose table failed is tried
    /// again instead, and the log grows on meanwhile (its writes are safe in its file).
    /// </summary>
    private void StartTable()
    {
        ReleaseTable(wait: true);
        _nextTableAt = _log!.Length + _logBytesPerTable;
        if (_sealed is null)
        {
            try
            {
                Seal();
            }
            catch (IOException)
            {
                return; // Tried again once the log has grown by as much again.
            }
            _nextTableAt = _logBytesPerTable;
        }
        var full = _sealed!;
        var table = NewTablePath();
        var gate = TableGate;
        _tabling = Task.Run(() =>
        {
            gate?.Wait();
            try
            {
                if (full.WriteTable(table, _options))
                    _db.IngestExternalFiles([table], _ingest);
            }
            catch
            {
                File.Delete(table);
                throw;
            }
            full.Delete();
        });
    }

    /// <summary>Renames the log's file to the sealed log's and opens a new log.</summary>
    private void Seal()
    {
        var full = _log!;
        var path = Path.Combine(_directory, LogFileName);
        full.MoveTo(Path.Combine(_directory, SealedLogFileName));
        try
        {
            _log = new WriteLog(path, _spare);
            _spare = null;
        }
        catch (IOException)
        {
            full.MoveTo(path);
            throw;
        }
        _sealed = full;
    }

    /// <summary>
    /// Once the sealed log's table is in RocksDB (waiting for it with <paramref name="wait"/>),
    /// lets the sealed log go. A failed table keeps it, to be tried again by <see cref="StartTable"/>.
    /// </summary>
    private void ReleaseTable(bool wait)
    {
        if (_tabling is not { } tabling || !wait && !tabling.IsCompleted)
            return;
        _tabling = null;
        try
        {
            tabling.GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is RocksDbException or IOException or StorageException)
        {
            return;
        }
        _spare = _sealed!.Detach();
        _sealed.Dispose();
        _sealed = null;
    }

    private string NewTablePath() => Path.Combine(_directory, TableFilePrefix + Guid.NewGuid().ToString("N") + ".sst");

    /// <summary>Writes the log's new records to its file and fsyncs it (and the sealed log, if its last records are unsynced).</summary>
    private void SyncLog()
    {
        lock (_index)
        {
            WriteOutLog();
            try
            {
                _sealed?.SyncWritten(); // Its last records, written out before it was sealed.
                _log!.SyncWritten();
            }
            catch (IOException e)
            {
                throw new StorageException(e.Message, e);
            }
        }
    }

    /// <summary>
    /// Writes the log's new records to its file. When that fails, none of them was acknowledged
    /// (the host withholds the step's acknowledgements), so they are taken back and the in-memory
    /// state built from them is rebuilt, and puts write the log at once until one succeeds.
    /// </summary>
    private void WriteOutLog()
    {
        try
        {
            _log!.WriteOut();
            _logFailed = null;
        }
        catch (IOException e)
        {
            _logFailed = e.Message;
            _log!.DiscardUnwritten();
            Reload();
            throw new StorageException("write failed: " + e.Message, e);
        }
    }

    /// <summary>Turns <paramref name="log"/>'s latest records into one table file that RocksDB ingests, then empties the log.</summary>
    /// <exception cref="StorageException">The table could not be written, or RocksDB refused it; the log is kept.</exception>
    private void WriteLogToTable(WriteLog log)
    {
        if (log.IsEmpty)
            return;
        var table = NewTablePath();
        try
        {
            if (log.WriteTable(table, _options))
                _db.IngestExternalFiles([table], _ingest);
            log.Clear();
        }
        catch (Exception e) when (e is RocksDbException or IOException or StorageException)
        {
            File.Delete(table);
            throw e as StorageException ?? new StorageException("writing the write log to RocksDB failed: " + e.Message, e);
        }
    }

    /// <summary>
    /// The latest logged record of every key in [<paramref name="low"/>, <paramref name="high"/>]
    /// after <paramref name="after"/>, sorted by stored key: the new log's, and the sealed log's
    /// for keys the new one does not hold.
    /// </summary>
    private List<(byte[] StoredKey, VersionedValue? Value)> LoggedIn(ulong low, ulong high, byte[]? after)
    {
        var newer = _log?.LatestIn(low, high, after) ?? [];
        if (_sealed?.LatestIn(low, high, after) is not { Count: > 0 } older)
            return newer;
        if (newer.Count == 0)
            return older;
        var merged = new List<(byte[] StoredKey, VersionedValue? Value)>(newer.Count + older.Count);
        int i = 0, j = 0;
        while (i < newer.Count || j < older.Count)
        {
            var order = i == newer.Count ? 1 : j == older.Count ? -1 : newer[i].StoredKey.AsSpan().SequenceCompareTo(older[j].StoredKey);
            if (order <= 0)
            {
                merged.Add(newer[i++]);
                if (order == 0)
                    j++;
            }
            else
                merged.Add(older[j++]);
        }
        return merged;
    }

    /// <summary>Writes (and with <paramref name="sync"/> fsyncs) the log unless <paramref name="covered"/> already reaches the last write.</summary>
    private void WriteWalUpTo(ref long covered, bool sync)
    {
        var target = Interlocked.Read(ref _writeSeq);
        lock (_syncLock)
        {
            if (target <= covered)
                return;
            WriteWal(sync);
            covered = target;
            if (sync)
                _walWrittenSeq = Math.Max(_walWrittenSeq, target);
        }
    }

    private void WriteWal(bool sync)
    {
        Native.Instance.rocksdb_flush_wal(_db.Handle, sync ? (byte)1 : (byte)0, out var error);
        if (error != IntPtr.Zero)
        {
            var message = Marshal.PtrToStringUTF8(error) ?? "unknown error";
            Native.Instance.rocksdb_free(error);
            throw new StorageException((sync ? "fsync of" : "write to") + " the write-ahead log failed: " + message);
        }
    }

    public void Flush()
    {
        if (_log is not null)
        {
            SyncLog();
            return;
        }
        lock (_syncLock)
        {
            WriteWal(sync: true);
            _syncedSeq = _walWrittenSeq = Interlocked.Read(ref _writeSeq);
        }
    }
}
