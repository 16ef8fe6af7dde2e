namespace GTStore.Simulation;

/// <summary>
/// Seeds for a simulation theory: a fixed list plus a short random batch, or only
/// GTSTORE_SIM_SEED when it is set (the replay command every failure prints), or the range
/// GTSTORE_SIM_SEEDS=from-to for a soak run.
/// </summary>
public static class SimSeeds
{
    public const int RandomBatch = 2;

    public static TheoryData<int> With(IEnumerable<int> fixedSeeds, int randomBatch = RandomBatch)
    {
        var data = new TheoryData<int>();
        if (Environment.GetEnvironmentVariable("GTSTORE_SIM_SEED") is { } replay && int.TryParse(replay, out var s))
        {
            data.Add(s);
            return data;
        }
        // A soak run over many seeds: GTSTORE_SIM_SEEDS=1-500.
        if (Environment.GetEnvironmentVariable("GTSTORE_SIM_SEEDS") is { } range && range.Split('-') is [var a, var b]
            && int.TryParse(a, out var from) && int.TryParse(b, out var to))
        {
            for (var seed = from; seed <= to; seed++)
                data.Add(seed);
            return data;
        }
        foreach (var seed in fixedSeeds)
            data.Add(seed);
        // A short random batch; a failure prints the seed to replay.
        var batch = new System.Random();
        for (var i = 0; i < randomBatch; i++)
            data.Add(batch.Next(100_000, int.MaxValue));
        return data;
    }
}
