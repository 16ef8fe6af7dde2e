using System.Globalization;

namespace GTStore.Core;

/// <summary>
/// Identity of a node, handed out by the manager: 1, 2, 3... shown as "server1", "server2".
/// Id 0 is the manager itself, so one address space covers every peer a node talks to.
/// </summary>
public readonly record struct NodeId(int Value) : IComparable<NodeId>
{
    public static readonly NodeId Manager = new(0);
    public static readonly NodeId None = new(-1);

    public bool IsNode => Value > 0;

    public int CompareTo(NodeId other) => Value.CompareTo(other.Value);

    public override string ToString() => Value switch
    {
        0 => "manager",
        < 0 => "none",
        _ => "server" + Value.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>Accepts "server3" or "3".</summary>
    public static bool TryParse(string text, out NodeId id)
    {
        var digits = text.StartsWith("server", StringComparison.OrdinalIgnoreCase) ? text[6..] : text;
        if (int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0)
        {
            id = new NodeId(v);
            return true;
        }
        id = None;
        return false;
    }
}
