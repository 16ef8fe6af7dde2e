namespace GTStore.Core;

/// <summary>One position on the ring owned by a node (the seed's "virtual node").</summary>
public readonly record struct Token(ulong Position, NodeId Owner);
