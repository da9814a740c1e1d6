using System.Globalization;

namespace Amalgam.Merging.Recipes;

/// <summary>
/// Sizes as mergekit's <c>--out-shard-size</c> reads them: a byte count, or a number with K, M or B (thousand,
/// million, billion: "5B" is 5·10⁹ bytes). Also accepted: G (= B), T, and KiB, MiB, GiB for powers of 1024.
/// </summary>
public static class ByteSize
{
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        string s = text.Trim().ToUpperInvariant();
        long unit = 1;
        (string Suffix, long Unit)[] units = [("KIB", 1L << 10), ("MIB", 1L << 20), ("GIB", 1L << 30), ("K", 1000L), ("M", 1000_000L), ("B", 1000_000_000L), ("G", 1000_000_000L), ("T", 1000_000_000_000L)];
        foreach (var (suffix, u) in units)
            if (s.EndsWith(suffix, StringComparison.Ordinal)) { s = s[..^suffix.Length]; unit = u; break; }
        if (!double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double n) || n <= 0 || double.IsInfinity(n)) return false;
        double total = n * unit;
        if (total >= long.MaxValue || total < 1) return false;
        bytes = (long)total;
        return true;
    }

    public static string Format(long bytes) => bytes switch
    {
        >= 1_000_000_000 => $"{bytes / 1e9:0.##} GB",
        >= 1_000_000 => $"{bytes / 1e6:0.##} MB",
        >= 1_000 => $"{bytes / 1e3:0.##} kB",
        _ => $"{bytes} B",
    };
}
