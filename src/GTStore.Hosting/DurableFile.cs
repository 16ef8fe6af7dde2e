using GTStore.Storage;

namespace GTStore.Hosting;

/// <summary>
/// Replaces a small file atomically and durably: write a temporary file, fsync it, rename it over
/// the target, fsync the directory (<see cref="Fsync"/>, which checks each result).
/// </summary>
public static class DurableFile
{
    public static void WriteAtomically(string path, ReadOnlySpan<byte> contents)
    {
        var temporary = path + ".tmp";
        using (var handle = File.OpenHandle(temporary, FileMode.Create, FileAccess.Write))
        {
            RandomAccess.Write(handle, contents, 0);
            Fsync.File(handle, temporary);
        }
        File.Move(temporary, path, overwrite: true);
        Fsync.Directory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }
}
