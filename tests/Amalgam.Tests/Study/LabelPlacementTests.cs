using Amalgam.Study;

namespace Amalgam.Tests.Study;

public class LabelPlacementTests
{
    static readonly LabelBox Area = new(0, 0, 400, 300);

    [Fact]
    public void A_lone_label_sits_right_of_its_point_without_a_leader()
    {
        var placed = LabelPlacement.Place([(100, 100)], [(50, 12)], Area, markerRadius: 5);
        var p = Assert.Single(placed);
        Assert.Equal(new LabelBox(100 + 5 + LabelPlacement.Gap, 94, 50, 12), p.Box);
        Assert.False(p.Leader);
    }

    [Fact]
    public void A_label_at_the_right_edge_goes_left()
    {
        var p = Assert.Single(LabelPlacement.Place([(380, 100)], [(50, 12)], Area, markerRadius: 5));
        Assert.Equal(380 - 5 - LabelPlacement.Gap - 50, p.Box.Left);
        Assert.False(p.Leader);
    }

    [Fact]
    public void Ten_labels_on_one_point_stack_apart_with_leaders()
    {
        var points = Enumerable.Repeat((100.0, 150.0), 10).ToList();
        var placed = LabelPlacement.Place(points, Enumerable.Repeat((80.0, 12.0), 10).ToList(), Area, markerRadius: 5);
        Assert.Equal(10, placed.Count);
        AssertDisjoint(placed.Select(p => p.Box).ToList());
        Assert.True(placed.Count(p => p.Leader) >= 4);   // at most three per side fit within the leader distance
        Assert.All(placed, p => Assert.True(p.Box.Inside(Area)));
    }

    [Fact]
    public void A_label_with_no_room_is_dropped_not_overlapped()
    {
        var tiny = new LabelBox(0, 0, 60, 20);
        var placed = LabelPlacement.Place([(10, 10), (10, 10)], [(40, 12), (40, 12)], tiny, markerRadius: 2);
        Assert.Single(placed);
    }

    internal static void AssertDisjoint(IReadOnlyList<LabelBox> boxes, IReadOnlyList<string>? names = null)
    {
        for (int i = 0; i < boxes.Count; i++)
            for (int j = i + 1; j < boxes.Count; j++)
                Assert.False(boxes[i].Overlaps(boxes[j]), $"labels {names?[i] ?? i.ToString()} {boxes[i]} and {names?[j] ?? j.ToString()} {boxes[j]} overlap");
    }

    /// <summary>
    /// The bundled study's frontier.png: every one of its 26 labels drawn, no two overlapping, none over a marker,
    /// all inside the plotting area. The boxes are measured again here with SkiaSharp from the labels' texts, so
    /// a placement that trusted wrong sizes would fail.
    /// </summary>
    [Fact]
    public void Bundled_frontier_labels_do_not_overlap()
    {
        var results = BundledResults.Load();
        var (plot, labels) = StudyPlots.FrontierLaidOut(results);
        if (Environment.GetEnvironmentVariable("AMALGAM_TEST_ARTIFACTS") is { Length: > 0 } keep)
        {
            StudyPlots.Write(results, keep);
            File.WriteAllLines(Path.Combine(keep, "frontier-labels.txt"), labels.Select(l => $"{l.Name}\t{l.Box}\tleader={l.Leader}"));
        }
        Assert.Equal(results.Strategies.Select(s => s.Name), labels.Select(l => l.Name));
        using var font = new SkiaSharp.SKFont(ScottPlot.Fonts.GetTypeface(EmbeddedFont.Register(), false, false), StudyPlots.LabelFontSize);
        var boxes = labels.Select(l =>
        {
            float width = font.MeasureText(l.Text, out var ink);
            Assert.True(ink.Width <= width + 1, l.Text);   // the ink fits the advance box
            return new LabelBox(l.Box.Left, l.Box.Top, width, font.Metrics.Descent - font.Metrics.Ascent);
        }).ToList();
        AssertDisjoint(boxes, labels.Select(l => l.Name).ToList());
        var data = plot.RenderManager.LastRender.DataRect;
        var area = new LabelBox(data.Left, data.Top, data.Width, data.Height);
        double r = StudyPlots.MarkerSize / 2;
        foreach (var (box, label) in boxes.Zip(labels))
        {
            Assert.True(box.Inside(area), $"{label.Name} {box} outside {area}");
            foreach (var other in labels)
                Assert.False(box.Overlaps(new LabelBox(other.Point.X - r, other.Point.Y - r, 2 * r, 2 * r)), $"{label.Name} covers the marker of {other.Name}");
            Assert.Equal(box.Distance(label.Point.X, label.Point.Y) > LabelPlacement.LeaderDistance(StudyPlots.MarkerClearance), label.Leader);
        }
    }
}
