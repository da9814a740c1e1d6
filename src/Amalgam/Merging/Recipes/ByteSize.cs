using System.Globalization;

namespace Amalgam.Merging.Recipes;

/// <summary>Sizes as mergekit's <c>--out-shard-size</c> writes them: a byte count, or a number with K, M, G, T (powers of 1000; KiB..TiB powers of 1024) and an optional B.</summary>
public static class ByteSize
{
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        string s = text.Trim().ToUpperInvariant();
        if (s.EndsWith('B')) s = s[..^1];
        long unit = 1;
        (string Suffix, long Unit)[] units = [("KI", 1L << 10), ("MI", 1L << 20), ("GI", 1L << 30), ("TI", 1L << 40), ("K", 1000L), ("M", 1000_000L), ("G", 1000_000_000L), ("T", 1000_000_000_000L)];
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
