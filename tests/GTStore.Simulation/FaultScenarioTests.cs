using Xunit.Abstractions;

namespace GTStore.Simulation;

/// <summary>
/// Deterministic simulation with faults (issue 3, item 7): see <see cref="FaultScenario"/>.
/// CI runs the fixed seeds and a short random batch; a failure names its seed and the command
/// that replays it: <c>GTSTORE_SIM_SEED=&lt;seed&gt; dotnet test tests/GTStore.Simulation</c>.
/// GTSTORE_SIM_TRACE=1 adds the last messages to the output; GTSTORE_SIM_TRACE_KEY=&lt;key&gt;
/// every message about one key.
/// </summary>
public sealed class FaultScenarioTests(ITestOutputHelper output)
{
    private static readonly int[] FixedSeeds = [1, 7, 42, 101, 2024, 31_337, 65_536, 999_983];

    private static readonly int[] PermanentFailureSeeds = [3, 17, 256, 4_096, 200_044, 1_295_958_975];

    public static TheoryData<int> Seeds() => SimSeeds.With(FixedSeeds);

    public static TheoryData<int> FewerSeeds() => SimSeeds.With(PermanentFailureSeeds, randomBatch: 1);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Faults_lose_no_acknowledged_write_and_replicas_converge(int seed)
    {
        Run(new FaultScenario(seed, output.WriteLine));
    }

    /// <summary>
    /// The same under faults, and one node stays down past the removal delay: the manager removes
    /// it and re-replicates from the survivors; it then restarts and rejoins as a new node.
    /// </summary>
    [Theory]
    [MemberData(nameof(FewerSeeds))]
    public void A_node_removed_after_a_long_outage_loses_no_acknowledged_write(int seed)
    {
        Run(new FaultScenario(seed, output.WriteLine, new FaultScenarioOptions { PermanentFailure = true }));
    }

    private static void Run(FaultScenario scenario)
    {
        try
        {
            scenario.Run();
        }
        catch (SimulationException)
        {
            scenario.Report();
            throw;
        }
        scenario.Check();
    }
}
