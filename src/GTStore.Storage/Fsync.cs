using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace GTStore.Storage;

/// <summary>
/// fsync called directly, its result checked: FileStream.Flush(true) was seen to report success
/// when fsync failed with EIO. Each failure is an <see cref="IOException"/> naming the file and errno.
/// </summary>
public static partial class Fsync
{
    /// <summary>Makes what was written through <paramref name="handle"/> durable; <paramref name="what"/> names it in the error.</summary>
    public static void File(SafeFileHandle handle, string what)
    {
        if (FsyncFd((int)handle.DangerousGetHandle()) != 0)
            throw Failure("fsync of " + what);
    }

    /// <summary>Makes a rename, creation or removal in <paramref name="directory"/> durable (.NET cannot open a directory handle).</summary>
    public static void Directory(string directory)
    {
        const int ReadOnlyDirectory = 0x10000; // O_RDONLY | O_DIRECTORY on Linux
        var fd = Open(directory, ReadOnlyDirectory);
        if (fd < 0)
            throw Failure("cannot open directory " + directory + " to fsync it");
        try
        {
            if (FsyncFd(fd) != 0)
                throw Failure("fsync of directory " + directory);
        }
        finally
        {
            _ = Close(fd);
        }
    }

    private static IOException Failure(string what)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncFd(int fd);
}
