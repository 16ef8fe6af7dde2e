namespace GTStore.Integration.Tests;

/// <summary>
/// Every test here starts whole clusters of processes; on a 2-core machine two at once starve each
/// other's heartbeats and time out. One collection runs them one after another.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ProcessesCollection
{
    public const string Name = "gtstore processes";
}
