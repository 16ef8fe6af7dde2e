using GTStore.Client;
using GTStore.Core.Messages;
using GTStore.Protocol;
using GTStore.Transport;
using Xunit.Abstractions;

namespace GTStore.Integration.Tests;

/// <summary>The client library against a cluster of real processes: binary data and size limits.</summary>
[Collection(ProcessesCollection.Name)]
public sealed class ClientLibraryTests(ITestOutputHelper output)
{
    private const int ValueBytesMax = 1024 * 1024;

    // DESIGN.md "Versions, deletes, limits": "Keys and values are binary-safe bytes."
    [Fact(Timeout = 120_000)]
    public async Task Keys_and_values_of_every_byte_value_round_trip_unchanged()
    {
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "3", "--rep", "3");
        var key = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();
        var value = Enumerable.Range(0, 4 * 256).Select(i => (byte)(255 - i % 256)).ToArray();
        // Differs from key only in its last byte, and is not valid UTF-8: must be a different key.
        var sibling = key.ToArray();
        sibling[^1] = 0xFE;

        await using (var writer = await GTStoreClient.InitAsync(new ClientOptions(cluster.ManagerAddress)))
        {
            await writer.PutAsync(key, value);
            await writer.PutAsync(sibling, [0x00, 0xFF, 0x00]);
        }
        await using var reader = await GTStoreClient.InitAsync(new ClientOptions(cluster.ManagerAddress));
        var read = await reader.GetAsync(key);
        Assert.True(read.Found);
        Assert.Equal(value, read.Value);
        Assert.Equal(new byte[] { 0x00, 0xFF, 0x00 }, (await reader.GetAsync(sibling)).Value);
        Assert.False((await reader.GetAsync(key[..255])).Found);
        cluster.Passed();
    }

    // DESIGN.md "Versions, deletes, limits": "an oversize key or value gets a clear error naming
    // the limit." Checked both in the library and at the node, for a client that skips the check.
    [Fact(Timeout = 120_000)]
    public async Task An_oversize_value_is_refused_naming_the_limit_and_the_cluster_keeps_serving()
    {
        await using var cluster = await TestCluster.StartAsync(output, "--nodes", "3", "--rep", "2");
        await using var client = await GTStoreClient.InitAsync(new ClientOptions(cluster.ManagerAddress));
        var oversize = new byte[ValueBytesMax + 1];

        var refused = await Assert.ThrowsAsync<InvalidRequestException>(() => client.PutAsync("big"u8.ToArray(), oversize));
        output.WriteLine("library: " + refused.Message);
        Assert.Contains(ValueBytesMax.ToString(System.Globalization.CultureInfo.InvariantCulture), refused.Message, StringComparison.Ordinal);

        // The same request sent straight to a node, past the library's check.
        var node = TestCluster.Nodes(await cluster.StatusAsync())[0]["address"]!.GetValue<string>();
        await using (var raw = await FrameConnection.ConnectAsync(node, null, CancellationToken.None))
        {
            var request = new ClientRequest(ClientOp.Put, "big"u8.ToArray(), oversize);
            var frame = await raw.RequestAsync(MessageCodec.TypeOf(request), MessageCodec.Encode(request), TimeSpan.FromSeconds(10));
            var reply = Assert.IsType<ClientReply>(MessageCodec.Decode(frame.Type, frame.Payload.Span));
            output.WriteLine($"node: {reply.Status}: {reply.Error}");
            Assert.Equal(ReplyStatus.Invalid, reply.Status);
            Assert.Contains(ValueBytesMax.ToString(System.Globalization.CultureInfo.InvariantCulture), reply.Error, StringComparison.Ordinal);
        }

        Assert.False((await client.GetAsync("big")).Found);
        var exact = new byte[ValueBytesMax];
        exact.AsSpan().Fill(0x5A);
        await client.PutAsync("big"u8.ToArray(), exact);
        Assert.Equal(exact, (await client.GetAsync("big")).Value);
        await client.PutAsync("small", "still serving");
        Assert.Equal("still serving", (await client.GetAsync("small")).ValueString);
        cluster.Passed();
    }
}
