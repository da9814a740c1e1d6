using System.Globalization;

namespace Amalgam.Study;

/// <summary>How report.md and the findings print numbers: one place, so report and results.json agree to the digit shown.</summary>
public static class StudyFormat
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Scores and normalised scores: three decimals.</summary>
    public static string Score(double v) => v.ToString("0.000", Inv);
    public static string Score(double? v) => v is double d ? Score(d) : "—";
    /// <summary>Relative FLOPs: three decimals (1.000 = the base model).</summary>
    public static string Flops(double v) => v.ToString("0.000", Inv);
    public static string TokensPerSecond(double v) => v.ToString("0.0", Inv);
    /// <summary>Parameters: digits with thousands separators.</summary>
    public static string Count(long v) => v.ToString("N0", Inv);
    public static string Seconds(double v) => v.ToString("0.0", Inv);
    public static string Percent(double fraction) => (100 * fraction).ToString("0.0", Inv) + "%";
    public static string Signed(double v) => (v >= 0 ? "+" : "") + v.ToString("0.000", Inv);

    /// <summary>An interval as <c>[0.712, 0.845]</c>; an em dash when there is none.</summary>
    public static string Interval(IReadOnlyList<double>? i) => i is { Count: 2 } ? $"[{Score(i[0])}, {Score(i[1])}]" : "—";
    public static string Interval((double Lo, double Hi) i) => $"[{Score(i.Lo)}, {Score(i.Hi)}]";
    /// <summary>A difference's interval with signs: <c>[+0.012, +0.080]</c>.</summary>
    public static string SignedInterval((double Lo, double Hi) i) => $"[{Signed(i.Lo)}, {Signed(i.Hi)}]";

    /// <summary>
    /// Above this spread ((slowest − fastest) / fastest of the timed probe runs) a tokens/s figure is called
    /// unstable: shown with a warning, and nothing in the recommendation rests on it.
    /// </summary>
    public const double StableSpread = 0.10;

    public static bool Stable(double? spread) => spread is double s && s <= StableSpread;

    /// <summary>A duration as the CLI's --budget reads it: <c>90s</c>, <c>5m</c>, <c>1h30m</c>.</summary>
    public static string Duration(TimeSpan t)
    {
        if (t.TotalSeconds < 60 || t.TotalSeconds % 60 != 0) return t.TotalSeconds.ToString("0.###", Inv) + "s";
        int m = (int)t.TotalMinutes;
        return m % 60 == 0 ? $"{m / 60}h" : m > 60 ? $"{m / 60}h{m % 60}m" : $"{m}m";
    }

    /// <summary>Parses <c>300</c> (seconds), <c>90s</c>, <c>5m</c>, <c>1h</c>, <c>1h30m</c>, <c>2m30s</c>; null when it is none of these or not positive.</summary>
    public static TimeSpan? ParseDuration(string text)
    {
        text = text.Trim();
        if (double.TryParse(text, NumberStyles.Float, Inv, out var plain)) return plain > 0 && double.IsFinite(plain) ? TimeSpan.FromSeconds(plain) : null;
        var m = System.Text.RegularExpressions.Regex.Match(text, @"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$");
        if (!m.Success || text.Length == 0) return null;
        double Part(int g) => m.Groups[g].Success ? double.Parse(m.Groups[g].Value, Inv) : 0;
        double seconds = Part(1) * 3600 + Part(2) * 60 + Part(3);
        return seconds > 0 ? TimeSpan.FromSeconds(seconds) : null;
    }
}
