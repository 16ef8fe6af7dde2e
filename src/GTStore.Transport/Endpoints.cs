using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace GTStore.Transport;

/// <summary>
/// Address strings (DESIGN.md "Processes"): a path starting with <c>/</c> or prefixed
/// <c>unix:</c> is a Unix domain socket; anything else is <c>host:port</c> over TCP, where host
/// is an IPv4 literal or <c>localhost</c> and port 0 asks a listener for an OS-assigned port.
/// </summary>
public static class Endpoints
{
    /// <summary>Prefix that marks a Unix domain socket path that does not start with <c>/</c>.</summary>
    public const string UnixPrefix = "unix:";

    /// <summary>
    /// Longest Unix domain socket path in bytes: <c>sun_path</c> holds 108 bytes including the
    /// terminating NUL.
    /// </summary>
    public const int UnixSocketPathBytesMax = 107;

    /// <summary>Parses an address string into the endpoint to bind or connect to.</summary>
    /// <exception cref="ArgumentException">The address is malformed; the message says how.</exception>
    public static EndPoint Parse(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.StartsWith(UnixPrefix, StringComparison.Ordinal))
        {
            return ParseUnix(address, address[UnixPrefix.Length..]);
        }

        if (address.StartsWith('/'))
        {
            return ParseUnix(address, address);
        }

        return ParseTcp(address);
    }

    /// <summary>The address string of an endpoint; <see cref="Parse"/> reads it back.</summary>
    public static string Format(EndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return endpoint switch
        {
            UnixDomainSocketEndPoint unix => FormatUnix(unix.ToString()),
            IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } ip => $"[{ip.Address}]:{ip.Port}",
            IPEndPoint ip => $"{ip.Address}:{ip.Port}",
            DnsEndPoint dns => $"{dns.Host}:{dns.Port}",
            _ => endpoint.ToString() ?? endpoint.GetType().Name,
        };
    }

    /// <summary>True when <paramref name="endpoint"/> is a Unix domain socket.</summary>
    public static bool IsUnix(EndPoint endpoint) => endpoint is UnixDomainSocketEndPoint;

    /// <summary>A stream socket of the right family for <paramref name="endpoint"/>, TCP with NoDelay.</summary>
    internal static Socket CreateSocket(EndPoint endpoint)
    {
        if (endpoint is UnixDomainSocketEndPoint)
        {
            return new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        }

        // Requests are small and latency-bound; the writer loop already batches per flush.
        return new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
    }

    private static string FormatUnix(string path) =>
        path.StartsWith('/') ? path : UnixPrefix + path;

    private static UnixDomainSocketEndPoint ParseUnix(string address, string path)
    {
        if (path.Length == 0)
        {
            throw new ArgumentException($"address '{address}' names an empty Unix socket path", nameof(address));
        }

        int pathBytes = Encoding.UTF8.GetByteCount(path);
        if (pathBytes > UnixSocketPathBytesMax)
        {
            throw new ArgumentException(
                $"Unix socket path '{path}' is {pathBytes} bytes; the limit is {UnixSocketPathBytesMax} bytes "
                + "(the 108-byte sun_path including its terminating NUL); use a shorter directory",
                nameof(address));
        }

        return new UnixDomainSocketEndPoint(path);
    }

    private static IPEndPoint ParseTcp(string address)
    {
        int colon = address.LastIndexOf(':');
        if (colon <= 0 || colon == address.Length - 1)
        {
            throw new ArgumentException(
                $"address '{address}' is neither a Unix socket path (starting with '/' or '{UnixPrefix}') nor host:port",
                nameof(address));
        }

        var host = address[..colon];
        var portText = address[(colon + 1)..];
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port)
            || port > IPEndPoint.MaxPort)
        {
            throw new ArgumentException(
                $"address '{address}' has port '{portText}'; a port must be 0..{IPEndPoint.MaxPort}",
                nameof(address));
        }

        return new IPEndPoint(ParseHost(address, host), port);
    }

    private static IPAddress ParseHost(string address, string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return IPAddress.Loopback;
        }

        if (IPAddress.TryParse(host, out var ip) && ip.AddressFamily == AddressFamily.InterNetwork
            && host.Count(c => c == '.') == 3)
        {
            return ip;
        }

        throw new ArgumentException(
            $"address '{address}' has host '{host}'; a host must be an IPv4 literal (a.b.c.d) or 'localhost'",
            nameof(address));
    }
}
