namespace Amalgam.Study;

/// <summary>A rectangle in pixels, y downwards.</summary>
public readonly record struct LabelBox(double Left, double Top, double Width, double Height)
{
    public double Right => Left + Width;
    public double Bottom => Top + Height;

    /// <summary>True when the two boxes share interior area (touching edges do not count).</summary>
    public bool Overlaps(LabelBox o) => Left < o.Right && o.Left < Right && Top < o.Bottom && o.Top < Bottom;

    public bool Inside(LabelBox o) => Left >= o.Left && Right <= o.Right && Top >= o.Top && Bottom <= o.Bottom;

    /// <summary>The point of the box nearest to (x, y) (the point itself when inside).</summary>
    public (double X, double Y) Nearest(double x, double y) => (Math.Clamp(x, Left, Right), Math.Clamp(y, Top, Bottom));

    public double Distance(double x, double y)
    {
        var (nx, ny) = Nearest(x, y);
        return Math.Sqrt((nx - x) * (nx - x) + (ny - y) * (ny - y));
    }
}

/// <summary>Where one label went: its box, and whether it sits far enough from its point to need a leader line.</summary>
public sealed record PlacedLabel(int Index, LabelBox Box, bool Leader);

/// <summary>
/// Greedy label placement for a scatter plot: labels are placed one at a time, most constrained first (the point
/// with the most neighbours within a label's size), each at the free candidate position nearest its point, where
/// free means inside the plotting area and overlapping neither an earlier label nor any point's marker. Candidates
/// are to the right of the point (preferred), then to the left, on a grid of vertical and horizontal shifts; a label
/// that ends up further than <see cref="LeaderDistance"/> from its point gets a leader line. A label with no free
/// candidate at all is dropped rather than drawn over another (the point stays; report.html names every point).
/// </summary>
public static class LabelPlacement
{
    /// <summary>Gap between a marker's edge and its label, pixels.</summary>
    public const double Gap = 3;
    /// <summary>A label further than this beyond its natural spot (marker radius + <see cref="Gap"/>) gets a leader line, pixels.</summary>
    public const double LeaderSlack = 3;

    /// <summary>The distance from its point past which a label has a leader line.</summary>
    public static double LeaderDistance(double markerRadius) => markerRadius + Gap + LeaderSlack;

    /// <param name="points">each label's point, pixels</param>
    /// <param name="sizes">each label's text width and height, pixels</param>
    /// <param name="area">the plotting area labels must stay inside</param>
    /// <param name="markerRadius">markers are kept clear as squares of this half-width</param>
    /// <returns>one entry per label that could be placed, in input order</returns>
    public static IReadOnlyList<PlacedLabel> Place(IReadOnlyList<(double X, double Y)> points, IReadOnlyList<(double Width, double Height)> sizes,
        LabelBox area, double markerRadius)
    {
        if (points.Count != sizes.Count) throw new ArgumentException($"sizes: {sizes.Count} sizes for {points.Count} points", nameof(sizes));
        var markers = points.Select(p => new LabelBox(p.X - markerRadius, p.Y - markerRadius, 2 * markerRadius, 2 * markerRadius)).ToList();
        var placed = new List<PlacedLabel>();
        var order = Enumerable.Range(0, points.Count)
            .OrderByDescending(i => points.Count(p => Math.Abs(p.X - points[i].X) < sizes[i].Width && Math.Abs(p.Y - points[i].Y) < 3 * sizes[i].Height))
            .ThenBy(i => points[i].Y).ThenBy(i => points[i].X).ThenBy(i => i).ToList();
        foreach (int i in order)
        {
            var (x, y) = points[i];
            var (w, h) = sizes[i];
            LabelBox? best = null;
            double bestCost = double.PositiveInfinity;
            foreach (var box in Candidates(x, y, w, h, markerRadius))
            {
                // Right of the point is where a reader looks first; the left side costs a little more.
                // Ties (boxes touching the point's row) go to the one centred on it.
                double cost = box.Distance(x, y) + (box.Right <= x ? 4 : 0) + 0.01 * Math.Abs(box.Top + h / 2 - y);
                if (cost >= bestCost || !box.Inside(area)) continue;
                if (markers.Any(m => box.Overlaps(m)) || placed.Any(p => box.Overlaps(p.Box))) continue;
                best = box;
                bestCost = cost;
            }
            if (best is { } b) placed.Add(new PlacedLabel(i, b, b.Distance(x, y) > LeaderDistance(markerRadius)));
        }
        return placed.OrderBy(p => p.Index).ToList();
    }

    /// <summary>Boxes beside the marker, shifted up and down in half-line steps and sideways in steps of two lines' height.</summary>
    static IEnumerable<LabelBox> Candidates(double x, double y, double w, double h, double r)
    {
        double step = h / 2, side = 2 * h;
        for (int dx = 0; dx <= 24; dx++)
            for (int dy = -60; dy <= 60; dy++)
            {
                double top = y - h / 2 + dy * step;
                yield return new LabelBox(x + r + Gap + dx * side, top, w, h);
                yield return new LabelBox(x - r - Gap - w - dx * side, top, w, h);
            }
    }
}
