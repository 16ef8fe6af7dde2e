using System.Runtime.InteropServices;

namespace GTStore.Transport.Reactor;

/// <summary>The Linux system calls the socket reactor makes: epoll, and recv/send that never block.</summary>
internal static unsafe partial class Libc
{
    public const uint EpollIn = 0x001;
    public const uint EpollOut = 0x004;
    public const uint EpollErr = 0x008;
    public const uint EpollHup = 0x010;
    public const uint EpollRdHup = 0x2000;
    public const uint EpollEt = 1u << 31;

    public const int EpollCtlAdd = 1;
    public const int EpollCtlDel = 2;
    public const int EpollCtlMod = 3;
    public const int EpollCloexec = 0x80000;

    public const int MsgDontWait = 0x40;
    public const int MsgNoSignal = 0x4000;

    public const int EIntr = 4;
    public const int EAgain = 11;

    /// <summary><c>struct epoll_event</c>, which x86-64 packs to 12 bytes.</summary>
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    public struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epfd, EpollEvent* events, int maxevents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint recv(int fd, byte* buf, nuint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint send(int fd, byte* buf, nuint len, int flags);
}
