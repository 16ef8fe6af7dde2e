namespace GTStore.Core;

/// <summary>
/// A write's version: a hybrid-logical-clock timestamp, then the id of the node that stamped it.
/// Totally ordered, so "latest version wins" picks the same value whatever order replicas merge in.
/// </summary>
public readonly record struct Version(long Timestamp, int Node) : IComparable<Version>
{
    public static readonly Version Zero = new(0, 0);

    public int CompareTo(Version other)
    {
        var c = Timestamp.CompareTo(other.Timestamp);
        return c != 0 ? c : Node.CompareTo(other.Node);
    }

    public static bool operator <(Version a, Version b) => a.CompareTo(b) < 0;
    public static bool operator >(Version a, Version b) => a.CompareTo(b) > 0;
    public static bool operator <=(Version a, Version b) => a.CompareTo(b) <= 0;
    public static bool operator >=(Version a, Version b) => a.CompareTo(b) >= 0;

    public static Version Max(Version a, Version b) => a >= b ? a : b;

    public override string ToString() => $"{HybridClock.PhysicalMs(Timestamp)}.{HybridClock.Logical(Timestamp)}@{Node}";
}

/// <summary>
/// A value with its version; <see cref="Value"/> null is a tombstone (a delete).
/// </summary>
public readonly record struct VersionedValue(Version Version, byte[]? Value)
{
    public bool IsTombstone => Value is null;

    /// <summary>The winner of two versions of one key: the higher version. Commutative and associative.</summary>
    public static VersionedValue Latest(VersionedValue a, VersionedValue b) => b.Version > a.Version ? b : a;
}

/// <summary>
/// Hybrid logical clock (Kulkarni et al.): timestamps are physical milliseconds shifted left 16 bits
/// plus a 16-bit logical counter, never going backwards and always above any timestamp observed.
/// Physical time is an input; the clock itself reads nothing.
/// </summary>
public sealed class HybridClock
{
    private const int LogicalBits = 16;
    private long _last;

    public long Last => _last;

    public static long PhysicalMs(long timestamp) => timestamp >> LogicalBits;

    public static long Logical(long timestamp) => timestamp & ((1L << LogicalBits) - 1);

    /// <summary>The lowest timestamp of physical millisecond <paramref name="physicalMs"/>.</summary>
    public static long AtPhysicalMs(long physicalMs) => physicalMs << LogicalBits;

    /// <summary>A new timestamp above the last one issued or observed and above <paramref name="floor"/>.</summary>
    public long Next(long physicalMs, long floor = 0)
    {
        var candidate = physicalMs << LogicalBits;
        _last = Math.Max(candidate, Math.Max(_last, floor) + 1);
        return _last;
    }

    /// <summary>Raise the clock to a timestamp seen from another node, so later stamps exceed it.</summary>
    public void Observe(long timestamp)
    {
        if (timestamp > _last)
            _last = timestamp;
    }
}
