using System.Net;
using System.Net.Sockets;
using GTStore.Transport.Reactor;

namespace GTStore.Transport;

/// <summary>
/// The stream a connection reads and writes its socket through: a <see cref="NetworkStream"/> on
/// .NET's socket engine, or, in a process that called <see cref="UseReactor"/>, a stream served by
/// one epoll thread of our own (see <see cref="SocketReactor"/>).
/// </summary>
public static class SocketStreams
{
    /// <summary>The environment variable that, set to 0, keeps .NET's socket engine in a daemon.</summary>
    public const string ReactorVariable = "GTSTORE_SOCKET_REACTOR";

    /// <summary>
    /// Serves this process's connections from the reactor (x86-64 Linux only; elsewhere, or with
    /// <see cref="ReactorVariable"/>=0, nothing changes). Call before the first connection.
    /// </summary>
    public static void UseReactor() =>
        SocketReactor.Enabled = SocketReactor.Supported && Environment.GetEnvironmentVariable(ReactorVariable) != "0";

    /// <summary>Whether connections are served by the reactor.</summary>
    public static bool ReactorInUse => SocketReactor.Enabled;

    /// <summary>
    /// Tests: serves the connections opened from this asynchronous flow (and the listeners it
    /// starts) by the reactor, whatever the process chose, so that one test process can run the
    /// transport contract over both engines side by side.
    /// </summary>
    internal static void UseReactorInThisFlow() => s_reactorInFlow.Value = SocketReactor.Supported;

    private static readonly AsyncLocal<bool> s_reactorInFlow = new();

    private static bool Reactor => SocketReactor.Enabled || s_reactorInFlow.Value;

    /// <summary>The stream of a connected (e.g. accepted) socket; it does not own the socket.</summary>
    public static Stream Open(Socket socket) =>
        Reactor ? new ReactorStream(socket) : new NetworkStream(socket, ownsSocket: false);

    /// <summary>Connects <paramref name="socket"/> to <paramref name="endpoint"/> and returns its stream.</summary>
    /// <exception cref="SocketException">The connect failed.</exception>
    public static async Task<Stream> ConnectAsync(Socket socket, EndPoint endpoint, CancellationToken ct)
    {
        if (!Reactor)
        {
            await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: false);
        }

        // A non-blocking connect, so that the socket never joins .NET's engine (which would then be
        // woken by every arrival on it as well): the reactor reports when it has finished.
        socket.Blocking = false;
        try
        {
            socket.Connect(endpoint);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
        {
        }
        var stream = new ReactorStream(socket, writable: false);
        try
        {
            await stream.WaitWritableAsync(ct).ConfigureAwait(false);
            if (socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error) is int error and not 0)
                throw new SocketException(error);
            return stream;
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
