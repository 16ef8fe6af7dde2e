namespace GTStore.Core;

/// <summary>
/// Redis Cluster's hash slot of a key: CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the
/// key, or of its hash tag (the bytes between the first '{' and the next '}', when not empty),
/// modulo 16384. Keys sharing a hash tag share a slot. GTStore places keys on the ring by slot
/// first (<see cref="KeyHash"/>), so that Redis Cluster clients can route each key to a node that
/// replicates it.
/// </summary>
public static class KeySlot
{
    /// <summary>Slots in the key space, as in Redis Cluster.</summary>
    public const int Count = 16384;

    private static readonly ushort[] Table = BuildTable();

    public static int Of(ReadOnlySpan<byte> key) => Crc16(HashTag(key)) & (Count - 1);

    /// <summary>The part of <paramref name="key"/> that is hashed: its hash tag if it has one, else all of it.</summary>
    public static ReadOnlySpan<byte> HashTag(ReadOnlySpan<byte> key)
    {
        var open = key.IndexOf((byte)'{');
        if (open < 0)
            return key;
        var close = key[(open + 1)..].IndexOf((byte)'}');
        return close > 0 ? key.Slice(open + 1, close) : key;
    }

    public static ushort Crc16(ReadOnlySpan<byte> data)
    {
        ushort crc = 0;
        foreach (var b in data)
            crc = (ushort)((crc << 8) ^ Table[((crc >> 8) ^ b) & 0xFF]);
        return crc;
    }

    private static ushort[] BuildTable()
    {
        var table = new ushort[256];
        for (var i = 0; i < 256; i++)
        {
            var crc = (ushort)(i << 8);
            for (var bit = 0; bit < 8; bit++)
                crc = (crc & 0x8000) != 0 ? (ushort)((crc << 1) ^ 0x1021) : (ushort)(crc << 1);
            table[i] = crc;
        }
        return table;
    }
}
