using Amalgam.Strategies;
using Amalgam.Tensors;
using ScottPlot;

namespace Amalgam.Study;

/// <summary>A point's label on frontier.png: the strategy, the text, its box and its point in pixels, whether a leader line joins them.</summary>
public sealed record FrontierLabel(string Name, string Text, LabelBox Box, (double X, double Y) Point, bool Leader);

/// <summary>
/// The study's two figures, rendered headless with ScottPlot 5 (SkiaSharp's self-contained native library and an
/// embedded font: nothing from the OS, see docs/study.md). Files are written atomically.
/// </summary>
public static class StudyPlots
{
    public const string FrontierFile = "frontier.png", PerTaskFile = "per_task.png";
    public const int FrontierWidth = 900, FrontierHeight = 600;

    /// <summary>Writes frontier.png and per_task.png into <paramref name="outDir"/> (created if needed); returns their paths.</summary>
    public static (string Frontier, string PerTask) Write(StudyResults results, string outDir)
    {
        Directory.CreateDirectory(outDir);
        string frontier = Path.Combine(outDir, FrontierFile), perTask = Path.Combine(outDir, PerTaskFile);
        Save(Frontier(results), frontier, FrontierWidth, FrontierHeight);
        var (w, h) = PerTaskSize(results);
        Save(PerTask(results), perTask, w, h);
        return (frontier, perTask);
    }

    /// <summary>Held-in normalised score against relative FLOPs (log₁₀ axis when costs span more than 4×), one colour per family.</summary>
    public static Plot Frontier(StudyResults results) => FrontierLaidOut(results).Plot;

    public const float LabelFontSize = 10, MarkerSize = 9;
    /// <summary>Half-width of the square around each marker that labels keep clear of, pixels.</summary>
    public const double MarkerClearance = MarkerSize / 2 + 1;

    /// <summary>
    /// The frontier plot at its file size with every point's label placed by <see cref="LabelPlacement"/> (no two
    /// overlapping, none over a marker, leader lines where a label had to move away), and the labels' boxes in
    /// pixels of the <see cref="FrontierWidth"/> × <see cref="FrontierHeight"/> image.
    /// </summary>
    public static (Plot Plot, IReadOnlyList<FrontierLabel> Labels) FrontierLaidOut(StudyResults results)
    {
        var plot = NewPlot();
        var strategies = results.Strategies;
        double min = strategies.Min(s => s.RelativeFlops), max = strategies.Max(s => s.RelativeFlops);
        bool log = max / min > 4;
        double X(double flops) => log ? Math.Log10(flops) : flops;

        var palette = new ScottPlot.Palettes.Category10();
        for (int f = 0; f < StrategyFamily.All.Count; f++)
        {
            var members = strategies.Where(s => s.Family == StrategyFamily.All[f]).ToList();
            if (members.Count == 0) continue;
            var points = plot.Add.ScatterPoints(members.Select(s => X(s.RelativeFlops)).ToArray(), members.Select(s => s.HeldInNormalized).ToArray(), palette.GetColor(f));
            points.MarkerSize = MarkerSize;
            points.LegendText = StrategyFamily.All[f];
        }

        var frontier = ParetoFrontier.Compute(results);  // deployable strategies only
        var line = plot.Add.Scatter(frontier.Select(p => X(p.Cost)).ToArray(), frontier.Select(p => p.Score).ToArray(), Colors.Black);
        line.LineWidth = 1.5f;
        line.LinePattern = LinePattern.Dashed;
        line.MarkerSize = 0;
        line.LegendText = "Pareto frontier (deployable)";

        if (log)
        {
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
                LabelFormatter = x => Math.Pow(10, x).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture),
            };
        }
        plot.Title($"{results.Suite}: quality against cost");
        plot.XLabel(log ? "relative FLOPs per example (base = 1, log scale)" : "relative FLOPs per example (base = 1)");
        plot.YLabel("held-in normalised score (expert = 1)");
        plot.ShowLegend(Edge.Right); // outside the data area, so it never hides a point
        // Room for the point labels on the right.
        double span = Math.Max(X(max) - X(min), log ? 0.3 : 0.5);
        var scores = strategies.Select(s => s.HeldInNormalized).ToList();
        double ySpan = Math.Max(scores.Max() - scores.Min(), 0.1);
        plot.Axes.SetLimits(X(min) - 0.08 * span, X(max) + 0.35 * span, scores.Min() - 0.08 * ySpan, scores.Max() + 0.1 * ySpan);

        // Lay the axes out at the file's size (labels are added inside the data area, so they do not change it),
        // then place the labels in pixels and convert their corners back to coordinates.
        plot.RenderInMemory(FrontierWidth, FrontierHeight);
        var data = plot.RenderManager.LastRender.DataRect;
        var area = new LabelBox(data.Left, data.Top, data.Width, data.Height);
        var texts = strategies.Select(s => s.Deployable ? s.Name : s.Name + " (not deployable)").ToList();
        var pixels = strategies.Select(s => plot.GetPixel(new Coordinates(X(s.RelativeFlops), s.HeldInNormalized))).Select(p => ((double)p.X, (double)p.Y)).ToList();
        var sizes = texts.Select(MeasureLabel).ToList();
        var placed = LabelPlacement.Place(pixels, sizes, area, MarkerClearance);
        var labels = new List<FrontierLabel>();
        foreach (var p in placed)
        {
            var s = strategies[p.Index];
            var colour = palette.GetColor(Math.Max(0, StrategyFamily.All.ToList().IndexOf(s.Family)));
            var corner = plot.GetCoordinates((float)p.Box.Left, (float)p.Box.Top);
            var text = plot.Add.Text(texts[p.Index], corner.X, corner.Y);
            text.LabelFontSize = LabelFontSize;
            text.LabelFontColor = colour;
            text.LabelAlignment = Alignment.UpperLeft;
            text.LabelPadding = 0;
            if (p.Leader)
            {
                var (nx, ny) = p.Box.Nearest(pixels[p.Index].Item1, pixels[p.Index].Item2);
                var end = plot.GetCoordinates((float)nx, (float)ny);
                var leader = plot.Add.Line(X(s.RelativeFlops), s.HeldInNormalized, end.X, end.Y);
                leader.LineColor = colour.WithAlpha(0.6);
                leader.LineWidth = 1;
                leader.MarkerSize = 0;
            }
            labels.Add(new FrontierLabel(s.Name, texts[p.Index], p.Box, pixels[p.Index], p.Leader));
        }
        return (plot, labels);
    }

    /// <summary>A label's text box in pixels at <see cref="LabelFontSize"/> in the embedded font: advance width, ascent to descent.</summary>
    public static (double Width, double Height) MeasureLabel(string text)
    {
        using var font = new SkiaSharp.SKFont(ScottPlot.Fonts.GetTypeface(EmbeddedFont.Register(), bold: false, italic: false), LabelFontSize);
        var metrics = font.Metrics;
        return (font.MeasureText(text), metrics.Descent - metrics.Ascent);
    }

    /// <summary>A heatmap of scores: one row per strategy (in results order, top down), one column per task.</summary>
    public static Plot PerTask(StudyResults results)
    {
        var plot = NewPlot();
        var strategies = results.Strategies;
        var tasks = results.Tasks;
        var data = new double[strategies.Count, tasks.Count];
        for (int r = 0; r < strategies.Count; r++)
            for (int c = 0; c < tasks.Count; c++)
                data[r, c] = strategies[r].PerTask.TryGetValue(tasks[c].Name, out var v) ? v : double.NaN;

        var map = plot.Add.Heatmap(data);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        map.ManualRange = new ScottPlot.Range(0, 1);
        map.NaNCellColor = Colors.LightGray;
        // Cell (r, c) spans [c, c+1] × [n-r-1, n-r]: row 0 at the top.
        map.Rectangle = new CoordinateRect(0, tasks.Count, 0, strategies.Count);
        plot.Add.ColorBar(map).Label = "score";

        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, tasks.Count).Select(c => c + 0.5).ToArray(),
            tasks.Select(t => t.HeldOut ? t.Name + " (held out)" : t.Name).ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = -45;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        // Rotated labels need room below the axis: about 7 px per character at 45°, plus the axis title.
        plot.Axes.Bottom.MinimumSize = 50 + 5.5f * tasks.Max(t => t.Name.Length + (t.HeldOut ? 11 : 0));
        plot.Axes.Left.SetTicks(Enumerable.Range(0, strategies.Count).Select(r => strategies.Count - r - 0.5).ToArray(),
            strategies.Select(s => s.Name).ToArray());
        plot.Axes.SetLimits(0, tasks.Count, 0, strategies.Count);
        plot.Title($"{results.Suite}: score per task ({results.Split} split)");
        plot.XLabel("task");
        plot.YLabel("strategy");
        return plot;
    }

    static Plot NewPlot()
    {
        string font = EmbeddedFont.Register();
        var plot = new Plot();
        plot.Font.Set(font);
        return plot;
    }

    static (int Width, int Height) PerTaskSize(StudyResults results) =>
        (Math.Max(700, 320 + 60 * results.Tasks.Count), Math.Max(450, 300 + 28 * results.Strategies.Count));

    /// <summary>Renders to PNG bytes, then writes them under a temporary name and renames: never a partial image.</summary>
    static void Save(Plot plot, string path, int width, int height)
    {
        byte[] png = plot.GetImageBytes(width, height, ImageFormat.Png);
        using var file = new AtomicFile(path);
        file.Stream.Write(png);
        file.Commit();
    }
}
