using System.Net;
using System.Net.Sockets;
using System.Text;

namespace GTStore.Node.Tests;

/// <summary>A RESP client on a bare socket: sends exact bytes and reads replies one by one, to test what real clients would not send.</summary>
internal sealed class RawClient : IAsyncDisposable
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly BufferedStream _input;

    private RawClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _input = new BufferedStream(_stream);
    }

    public static async Task<RawClient> ConnectAsync(string address)
    {
        var endpoint = IPEndPoint.Parse(address);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endpoint);
        return new RawClient(socket);
    }

    public Task SendAsync(string text) => SendAsync(Encoding.Latin1.GetBytes(text));

    public async Task SendAsync(byte[] bytes) => await _stream.WriteAsync(bytes);

    /// <summary>
    /// Reads one reply and renders it as text: <c>+OK</c>, <c>-ERR ...</c>, <c>:5</c>,
    /// <c>$v</c> (bulk, Latin-1), <c>$nil</c>, <c>*[a, b]</c>, <c>*nil</c>.
    /// </summary>
    public async Task<string> ReadReplyAsync()
    {
        using var timeout = new CancellationTokenSource(ReadTimeout);
        return await ReadReplyAsync(timeout.Token);
    }

    /// <summary>Reads everything until the server closes; fails if it does not close in time.</summary>
    public async Task<string> ReadToEndAsync()
    {
        using var timeout = new CancellationTokenSource(ReadTimeout);
        var all = new MemoryStream();
        await _input.CopyToAsync(all, timeout.Token);
        return Encoding.Latin1.GetString(all.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        await _input.DisposeAsync();
        _socket.Dispose();
    }

    private async Task<string> ReadReplyAsync(CancellationToken ct)
    {
        string line = await ReadLineAsync(ct);
        switch (line[0])
        {
            case '+' or '-' or ':':
                return line;
            case '$':
                int length = int.Parse(line.AsSpan(1));
                if (length < 0)
                {
                    return "$nil";
                }

                var data = new byte[length + 2];
                await _input.ReadExactlyAsync(data, ct);
                return "$" + Encoding.Latin1.GetString(data, 0, length);
            case '*':
                int count = int.Parse(line.AsSpan(1));
                if (count < 0)
                {
                    return "*nil";
                }

                var items = new List<string>();
                for (int i = 0; i < count; i++)
                {
                    items.Add(await ReadReplyAsync(ct));
                }

                return "*[" + string.Join(", ", items) + "]";
            default:
                throw new InvalidDataException($"not a RESP reply: '{line}'");
        }
    }

    private async Task<string> ReadLineAsync(CancellationToken ct)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            if (await _input.ReadAsync(one, ct) == 0)
            {
                throw new EndOfStreamException($"the server closed the connection after '{line}'");
            }

            if (one[0] == '\n' && line.Length > 0 && line[^1] == '\r')
            {
                return line.ToString(0, line.Length - 1);
            }

            line.Append((char)one[0]);
        }
    }
}
