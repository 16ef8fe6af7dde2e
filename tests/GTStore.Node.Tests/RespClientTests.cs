using StackExchange.Redis;

namespace GTStore.Node.Tests;

/// <summary>
/// A real Redis client library against the RESP server (issue 4 item 2: StackExchange.Redis in
/// an xunit test; item 1: binary-safe keys and values, pipelining).
/// </summary>
public sealed class RespClientTests
{
    [Fact]
    public async Task StackExchange_Redis_connects_and_sets_gets_deletes_and_checks_keys()
    {
        var backend = new MemoryBackend();
        await using var server = RespServerTests.Start(backend);
        await using var redis = await ConnectAsync(server.Address);
        var db = redis.GetDatabase();

        Assert.True(await db.StringSetAsync("greeting", "hello"));
        Assert.Equal("hello", (string?)await db.StringGetAsync("greeting"));
        Assert.True((await db.StringGetAsync("missing")).IsNull);
        Assert.True(await db.KeyExistsAsync("greeting"));
        Assert.True(await db.KeyDeleteAsync("greeting"));
        Assert.False(await db.KeyDeleteAsync("greeting"));
        Assert.False(await db.KeyExistsAsync("greeting"));
        Assert.True(await db.StringSetAsync("once", "1", when: When.NotExists));
        Assert.False(await db.StringSetAsync("once", "2", when: When.NotExists));
        Assert.Equal("1", (string?)await db.StringGetAsync("once"));
        Assert.True(await db.PingAsync() >= TimeSpan.Zero);
    }

    [Fact]
    public async Task StackExchange_Redis_round_trips_binary_keys_and_values()
    {
        var backend = new MemoryBackend();
        await using var server = RespServerTests.Start(backend);
        await using var redis = await ConnectAsync(server.Address);
        var db = redis.GetDatabase();

        var random = new Random(4);
        for (int i = 0; i < 20; i++)
        {
            var key = new byte[random.Next(1, 300)];
            var value = new byte[random.Next(0, 100_000)];
            random.NextBytes(key);
            random.NextBytes(value);
            Assert.True(await db.StringSetAsync(key, value));
            Assert.Equal(value, (byte[]?)await db.StringGetAsync(key));
            Assert.Equal(value, backend.Get(key));
        }
    }

    [Fact]
    public async Task StackExchange_Redis_pipelines_a_batch_of_1000_operations()
    {
        var backend = new MemoryBackend();
        await using var server = RespServerTests.Start(backend);
        await using var redis = await ConnectAsync(server.Address);
        var db = redis.GetDatabase();

        var batch = db.CreateBatch();
        var writes = new List<Task<bool>>();
        var reads = new List<Task<RedisValue>>();
        for (int i = 0; i < 500; i++)
        {
            writes.Add(batch.StringSetAsync($"key:{i}", $"value:{i}"));
            reads.Add(batch.StringGetAsync($"key:{i}"));
        }

        batch.Execute();
        Assert.All(await Task.WhenAll(writes), Assert.True);
        var values = await Task.WhenAll(reads);
        Assert.Equal(Enumerable.Range(0, 500).Select(i => $"value:{i}"), values.Select(v => (string?)v));
        Assert.Equal(500, backend.Count);
        var many = await db.StringGetAsync([.. Enumerable.Range(0, 500).Select(i => (RedisKey)$"key:{i}")]);
        Assert.Equal(values, many);
    }

    [Fact]
    public async Task StackExchange_Redis_sees_server_errors_as_exceptions_and_keeps_the_connection()
    {
        var backend = new MemoryBackend();
        await using var server = RespServerTests.Start(backend, valueBytesMax: 100);
        await using var redis = await ConnectAsync(server.Address);
        var db = redis.GetDatabase();

        var error = await Assert.ThrowsAsync<RedisServerException>(() => db.StringSetAsync("k", new string('v', 101)));
        Assert.Equal("ERR value of 101 bytes exceeds the limit of 100 bytes", error.Message);
        Assert.True(await db.StringSetAsync("k", "fits"));
    }

    private static async Task<ConnectionMultiplexer> ConnectAsync(string address)
    {
        var log = new StringWriter();
        try
        {
            var options = ConfigurationOptions.Parse(address);
            options.ConnectTimeout = 10_000;
            options.AbortOnConnectFail = true;
            return await ConnectionMultiplexer.ConnectAsync(options, log);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"StackExchange.Redis could not connect: {e.Message}\n{log}", e);
        }
    }
}
