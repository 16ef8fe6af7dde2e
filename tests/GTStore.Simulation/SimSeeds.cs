namespace GTStore.Simulation;

/// <summary>
/// Seeds for a simulation theory: a fixed list plus a short random batch, or only
/// GTSTORE_SIM_SEED when it is set (the replay command every failure prints).
/// </summary>
public static class SimSeeds
{
    public const int RandomBatch = 2;

    public static TheoryData<int> With(IEnumerable<int> fixedSeeds)
    {
        var data = new TheoryData<int>();
        if (Environment.GetEnvironmentVariable("GTSTORE_SIM_SEED") is { } replay && int.TryParse(replay, out var s))
        {
            data.Add(s);
            return data;
        }
        foreach (var seed in fixedSeeds)
            data.Add(seed);
        // A short random batch; a failure prints the seed to replay.
        var batch = new System.Random();
        for (var i = 0; i < RandomBatch; i++)
            data.Add(batch.Next(100_000, int.MaxValue));
        return data;
    }
}
