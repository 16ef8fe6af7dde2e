using System.Net;
using System.Net.Sockets;

namespace GTStore.Transport.Tests;

/// <summary>Address strings (DESIGN.md "Processes": Unix sockets by default, mind the 108-byte path limit; TCP host:port).</summary>
public sealed class EndpointsTests
{
    [Theory]
    [InlineData("/tmp/cluster/node1.sock", "/tmp/cluster/node1.sock")]
    [InlineData("unix:/tmp/cluster/node1.sock", "/tmp/cluster/node1.sock")]
    [InlineData("unix:relative.sock", "relative.sock")]
    public void Paths_and_unix_prefixes_parse_as_Unix_sockets(string address, string path)
    {
        var endpoint = Assert.IsType<UnixDomainSocketEndPoint>(Endpoints.Parse(address));
        Assert.Equal(path, endpoint.ToString());
    }

    [Theory]
    [InlineData("127.0.0.1:7000", "127.0.0.1", 7000)]
    [InlineData("10.1.2.3:0", "10.1.2.3", 0)]
    [InlineData("localhost:65535", "127.0.0.1", 65535)]
    public void Host_and_port_parse_as_TCP(string address, string host, int port)
    {
        var endpoint = Assert.IsType<IPEndPoint>(Endpoints.Parse(address));
        Assert.Equal(IPAddress.Parse(host), endpoint.Address);
        Assert.Equal(port, endpoint.Port);
    }

    [Theory]
    [InlineData("/tmp/a.sock")]
    [InlineData("unix:a.sock")]
    [InlineData("192.168.0.9:4000")]
    public void Format_gives_back_an_address_that_parses_to_the_same_endpoint(string address)
    {
        Assert.Equal(address, Endpoints.Format(Endpoints.Parse(address)));
    }

    [Theory]
    // No port at all.
    [InlineData("127.0.0.1", "neither a Unix socket path")]
    // Port past 65535.
    [InlineData("127.0.0.1:65536", "a port must be 0..65535")]
    // Signs and spaces are not digits.
    [InlineData("127.0.0.1:-1", "a port must be 0..65535")]
    // Names other than localhost would need DNS, which the transport does not do.
    [InlineData("example.com:80", "IPv4 literal")]
    // IPAddress.Parse reads "1.2.3" as 1.2.0.3; an address must spell four parts.
    [InlineData("1.2.3:80", "IPv4 literal")]
    // Empty host.
    [InlineData(":80", "neither a Unix socket path")]
    // Empty path after the prefix.
    [InlineData("unix:", "empty Unix socket path")]
    public void Malformed_addresses_are_rejected_saying_why(string address, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() => Endpoints.Parse(address));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Unix_socket_path_over_the_limit_is_rejected_naming_the_limit()
    {
        var longest = "/" + new string('a', Endpoints.UnixSocketPathBytesMax - 1);
        Assert.IsType<UnixDomainSocketEndPoint>(Endpoints.Parse(longest));

        var error = Assert.Throws<ArgumentException>(() => Endpoints.Parse(longest + "a"));
        Assert.Contains($"the limit is {Endpoints.UnixSocketPathBytesMax} bytes", error.Message);
        Assert.Contains("108-byte", error.Message);
    }
}
