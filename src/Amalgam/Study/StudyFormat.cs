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
}
