using System.Net.Sockets;

namespace GTStore.Transport;

/// <summary>
/// The accept loop shared by every listener (frames and RESP): accepts until stopped, hands each
/// socket to <c>attach</c>, and on a transient accept failure (e.g. out of file descriptors)
/// reports it and retries after a pause instead of spinning.
/// </summary>
public static class SocketAcceptor
{
    /// <summary>Pause after a failed accept.</summary>
    public static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(50);

    public static async Task RunAsync(Socket listenSocket, Action<Socket> attach, Action<SocketException> onAcceptFailed, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listenSocket.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (stopping.IsCancellationRequested || e is ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                onAcceptFailed(e);
                await Task.Delay(RetryDelay, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }
            attach(socket);
        }
    }
}
