using System.Globalization;
using System.Net;
using System.Text;

namespace Amalgam.Study;

/// <summary>One strategy as report.html's frontier draws it.</summary>
public sealed record SvgPoint(string Name, string Family, double Cost, double Score, ScoreInterval? Interval, bool Deployable, bool Recommended, string Tip);

/// <summary>
/// report.html's frontier chart as inline SVG (no xmlns attribute: HTML needs none, and the file then names no
/// URL): quality against relative FLOPs (log₁₀ axis when costs span more than 4×, as frontier.png), one colour per
/// family, vertical error bars where an interval is known, the Pareto frontier of the deployable points dashed, and
/// each point a focusable group whose <c>data-tip</c> the page's script shows on hover (its <c>&lt;title&gt;</c> is
/// the same text for browsers without script).
/// </summary>
public static class SvgFrontier
{
    public const int Width = 880, Height = 520;
    const double Left = 72, Right = 20, Top = 20, Bottom = 56;
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Category10, the PNGs' palette, in <see cref="Strategies.StrategyFamily.All"/> order.</summary>
    public static IReadOnlyList<string> Palette { get; } = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];

    public static string Colour(string family)
    {
        int i = Strategies.StrategyFamily.All.ToList().IndexOf(family);
        return Palette[Math.Max(0, i) % Palette.Count];
    }

    public static string Render(string id, string yLabel, IReadOnlyList<SvgPoint> points, IReadOnlyList<FrontierPoint> frontier)
    {
        if (points.Count == 0) throw new ArgumentException("points: nothing to draw", nameof(points));
        double minCost = points.Min(p => p.Cost), maxCost = points.Max(p => p.Cost);
        bool log = maxCost / minCost > 4;
        double X(double cost) => log ? Math.Log10(cost) : cost;
        double x0 = X(minCost), x1 = X(maxCost), xPad = Math.Max(x1 - x0, log ? 0.3 : 0.5) * 0.06;
        x0 -= xPad; x1 += xPad;
        double y0 = points.Min(p => Math.Min(p.Score, p.Interval?.Lo ?? p.Score)), y1 = points.Max(p => Math.Max(p.Score, p.Interval?.Hi ?? p.Score));
        double yPad = Math.Max(y1 - y0, 0.1) * 0.06;
        y0 -= yPad; y1 += yPad;
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        double Px(double cost) => Left + (X(cost) - x0) / (x1 - x0) * plotW;
        double Py(double score) => Top + (y1 - score) / (y1 - y0) * plotH;

        var svg = new StringBuilder();
        svg.Append($"<svg id=\"{id}\" class=\"chart\" role=\"img\" viewBox=\"0 0 {Width} {Height}\" width=\"{Width}\" height=\"{Height}\">");
        svg.Append($"<rect x=\"{F(Left)}\" y=\"{F(Top)}\" width=\"{F(plotW)}\" height=\"{F(plotH)}\" class=\"area\"/>");
        foreach (var v in YTicks(y0, y1))
            svg.Append($"<line class=\"grid\" x1=\"{F(Left)}\" x2=\"{F(Left + plotW)}\" y1=\"{F(Py(v))}\" y2=\"{F(Py(v))}\"/>")
               .Append($"<text class=\"tick\" x=\"{F(Left - 6)}\" y=\"{F(Py(v) + 4)}\" text-anchor=\"end\">{v.ToString("0.0##", Inv)}</text>");
        foreach (var c in XTicks(log ? Math.Pow(10, x0) : x0, log ? Math.Pow(10, x1) : x1, log))
            svg.Append($"<line class=\"grid\" x1=\"{F(Px(c))}\" x2=\"{F(Px(c))}\" y1=\"{F(Top)}\" y2=\"{F(Top + plotH)}\"/>")
               .Append($"<text class=\"tick\" x=\"{F(Px(c))}\" y=\"{F(Top + plotH + 16)}\" text-anchor=\"middle\">{c.ToString("0.###", Inv)}</text>");
        svg.Append($"<text class=\"axis\" x=\"{F(Left + plotW / 2)}\" y=\"{Height - 12}\" text-anchor=\"middle\">relative FLOPs per example (base = 1{(log ? ", log scale" : "")})</text>");
        svg.Append($"<text class=\"axis\" transform=\"translate(16 {F(Top + plotH / 2)}) rotate(-90)\" text-anchor=\"middle\">{Esc(yLabel)}</text>");

        if (frontier.Count > 0)
            svg.Append($"<polyline class=\"frontier\" points=\"{string.Join(" ", frontier.Select(p => $"{F(Px(p.Cost))},{F(Py(p.Score))}"))}\"/>");

        foreach (var p in points)
        {
            string colour = Colour(p.Family), tip = Esc(p.Tip);
            double cx = Px(p.Cost), cy = Py(p.Score);
            svg.Append($"<g class=\"pt{(p.Recommended ? " rec" : "")}\" tabindex=\"0\" data-name=\"{Esc(p.Name)}\" data-tip=\"{tip}\"><title>{tip}</title>");
            if (p.Interval is { } iv)
            {
                double lo = Py(iv.Lo), hi = Py(iv.Hi);
                svg.Append($"<path class=\"err\" stroke=\"{colour}\" d=\"M{F(cx)} {F(lo)}V{F(hi)}M{F(cx - 4)} {F(lo)}H{F(cx + 4)}M{F(cx - 4)} {F(hi)}H{F(cx + 4)}\"/>");
            }
            if (p.Recommended) svg.Append($"<circle class=\"ring\" cx=\"{F(cx)}\" cy=\"{F(cy)}\" r=\"9\"/>");
            svg.Append(p.Deployable
                ? $"<circle cx=\"{F(cx)}\" cy=\"{F(cy)}\" r=\"5.5\" fill=\"{colour}\" stroke=\"#ffffff\"/>"
                : $"<circle cx=\"{F(cx)}\" cy=\"{F(cy)}\" r=\"5.5\" fill=\"#ffffff\" stroke=\"{colour}\" stroke-width=\"2\"/>");
            svg.Append("</g>");
        }
        return svg.Append("</svg>").ToString();
    }

    /// <summary>Ticks at multiples of 1, 2 or 5 × 10ⁿ, about six over the range.</summary>
    public static IReadOnlyList<double> YTicks(double min, double max)
    {
        double raw = (max - min) / 6, magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1.0, 2, 5, 10 }.Select(m => m * magnitude).First(s => s >= raw);
        var ticks = new List<double>();
        for (double v = Math.Ceiling(min / step) * step; v <= max + 1e-12; v += step) ticks.Add(Math.Round(v / step) * step + 0.0); // + 0.0: no "-0"
        return ticks;
    }

    /// <summary>Linear: as <see cref="YTicks"/>; log: 1, 2, 5 × 10ⁿ inside the range (the ends when fewer than two fall in it).</summary>
    public static IReadOnlyList<double> XTicks(double min, double max, bool log)
    {
        if (!log) return YTicks(min, max);
        var ticks = new List<double>();
        for (int e = (int)Math.Floor(Math.Log10(min)); e <= (int)Math.Ceiling(Math.Log10(max)); e++)
            foreach (var m in new[] { 1.0, 2, 5 })
                if (m * Math.Pow(10, e) is var v && v >= min && v <= max) ticks.Add(v);
        return ticks.Count >= 2 ? ticks : [min, max];
    }

    static string F(double v) => v.ToString("0.#", Inv);
    static string Esc(string s) => WebUtility.HtmlEncode(s).Replace("\n", "&#10;");
}
