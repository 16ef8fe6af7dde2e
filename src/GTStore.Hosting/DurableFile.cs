using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace GTStore.Hosting;

/// <summary>
/// Replaces a small file atomically and durably: write a temporary file, fsync it, rename it over
/// the target, fsync the directory. fsync is called directly and its result checked, because
/// FileStream.Flush(true) was seen to report success when fsync failed with EIO.
/// </summary>
public static partial class DurableFile
{
    public static void WriteAtomically(string path, ReadOnlySpan<byte> contents)
    {
        var temporary = path + ".tmp";
        using (var handle = File.OpenHandle(temporary, FileMode.Create, FileAccess.Write))
        {
            RandomAccess.Write(handle, contents, 0);
            Sync(handle, temporary);
        }
        File.Move(temporary, path, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Makes a rename in <paramref name="directory"/> durable (.NET cannot open a directory handle).</summary>
    private static void SyncDirectory(string directory)
    {
        const int ReadOnlyDirectory = 0x10000; // O_RDONLY | O_DIRECTORY on Linux
        var fd = Open(directory, ReadOnlyDirectory);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot open directory {directory} to fsync it: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
        try
        {
            if (Fsync(fd) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync of directory {directory} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    private static void Sync(SafeFileHandle handle, string what)
    {
        if (Fsync((int)handle.DangerousGetHandle()) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"fsync of {what} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);
}
