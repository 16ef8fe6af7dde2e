using GTStore.Client;

namespace GTStore.Cli;

/// <summary><c>gtstore client --put K --val V | --get K | --delete K</c>: one request through the client library.</summary>
public static class ClientCommand
{
    public static async Task<int> RunAsync(ClusterDirectory directory, string? put, string? value, string? get, string? delete)
    {
        var file = directory.Require();
        try
        {
            await using var client = await GTStoreClient.InitAsync(Options(directory, file)).ConfigureAwait(false);
            if (put is not null)
            {
                var written = await client.PutAsync(put, value!).ConfigureAwait(false);
                Console.WriteLine($"OK, {written.Coordinator}");
                return 0;
            }
            if (delete is not null)
            {
                var deleted = await client.DeleteAsync(delete).ConfigureAwait(false);
                Console.WriteLine($"OK, {deleted.Coordinator}");
                return 0;
            }
            var read = await client.GetAsync(get!).ConfigureAwait(false);
            if (!read.Found)
            {
                Console.Error.WriteLine($"key '{get}' not found (coordinator {read.Coordinator})");
                return 1;
            }
            Console.WriteLine($"{get}, {read.ValueString}, {read.Coordinator}");
            return 0;
        }
        catch (UnknownOutcomeException e)
        {
            Console.Error.WriteLine("gtstore: outcome unknown: " + e.Message);
            return 3;
        }
        catch (InvalidRequestException e)
        {
            Console.Error.WriteLine("gtstore: invalid request: " + e.Message);
            return 2;
        }
        catch (Exception e) when (e is GTStoreException or IOException)
        {
            Console.Error.WriteLine("gtstore: " + e.Message);
            return 1;
        }
    }

    /// <summary>The manager's address, and the nodes recorded in the cluster directory as fallbacks if it is down.</summary>
    public static ClientOptions Options(ClusterDirectory directory, ClusterFile file) => new(file.ManagerAddress)
    {
        FallbackNodes = file.Nodes.Select(n => Node.NodeHost.ReadIdentity(directory.NodeDirectory(n.Slot))?.Address)
            .OfType<string>().Distinct().ToList(),
    };
}
