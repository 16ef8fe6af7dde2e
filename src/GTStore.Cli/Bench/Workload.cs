namespace GTStore.Cli.Bench;

/// <summary>Picks record indices 0..count-1, uniformly or with YCSB's zipfian skew.</summary>
public abstract class KeyChooser
{
    public abstract long Next(Random random);

    public static KeyChooser Create(string distribution, long count) => distribution switch
    {
        "uniform" => new Uniform(count),
        "zipfian" => new Zipfian(count),
        _ => throw new CliException($"--distribution must be uniform or zipfian, got '{distribution}'", 2),
    };

    private sealed class Uniform(long count) : KeyChooser
    {
        public override long Next(Random random) => random.NextInt64(count);
    }

    /// <summary>
    /// YCSB's ZipfianGenerator (Gray et al., "Quickly generating billion-record synthetic
    /// databases") with constant 0.99; popular items are scattered over the keyspace by hashing,
    /// as YCSB's ScrambledZipfian does, so hot keys do not cluster on one node.
    /// </summary>
    private sealed class Zipfian : KeyChooser
    {
        private const double Theta = 0.99;
        private readonly long _count;
        private readonly double _zetan;
        private readonly double _alpha;
        private readonly double _eta;

        public Zipfian(long count)
        {
            _count = count;
            _zetan = Zeta(count);
            var zeta2 = Zeta(2);
            _alpha = 1.0 / (1.0 - Theta);
            _eta = (1 - Math.Pow(2.0 / count, 1 - Theta)) / (1 - zeta2 / _zetan);
        }

        private static double Zeta(long n)
        {
            double sum = 0;
            for (long i = 1; i <= n; i++)
                sum += 1 / Math.Pow(i, Theta);
            return sum;
        }

        public override long Next(Random random)
        {
            var u = random.NextDouble();
            var uz = u * _zetan;
            long rank = uz < 1 ? 0 : uz < 1 + Math.Pow(0.5, Theta) ? 1 : (long)(_count * Math.Pow(_eta * u - _eta + 1, _alpha));
            rank = Math.Min(rank, _count - 1);
            return (long)(System.IO.Hashing.XxHash3.HashToUInt64(BitConverter.GetBytes(rank)) % (ulong)_count);
        }
    }
}

/// <summary>A mix of reads and updates over a fixed set of records.</summary>
public sealed record Workload(string Name, double ReadRatio)
{
    /// <summary>YCSB core workloads A (update heavy), B (read mostly), C (read only).</summary>
    public static Workload Ycsb(string letter) => letter.ToUpperInvariant() switch
    {
        "A" => new Workload("YCSB A (50% read, 50% update)", 0.5),
        "B" => new Workload("YCSB B (95% read, 5% update)", 0.95),
        "C" => new Workload("YCSB C (100% read)", 1.0),
        _ => throw new CliException($"--workload must be A, B or C, got '{letter}'", 2),
    };

    public static string Key(long index) => "user" + index.ToString("D10", System.Globalization.CultureInfo.InvariantCulture);
}
