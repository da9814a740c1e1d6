namespace Amalgam.Study;

/// <summary>A strategy as a point of the cost/quality plane.</summary>
public sealed record FrontierPoint(string Name, double Cost, double Score);

/// <summary>
/// The non-dominated strategies: p is dominated when some q costs no more and scores no less, and is strictly
/// better in one of the two. Points with identical cost and score do not dominate each other, so all of them stay.
/// </summary>
public static class ParetoFrontier
{
    /// <returns>the frontier sorted by cost, then score descending, then name (ordinal): deterministic for any input order</returns>
    public static IReadOnlyList<FrontierPoint> Compute(IEnumerable<FrontierPoint> points)
    {
        var sorted = points.ToList();
        foreach (var p in sorted)
            if (!double.IsFinite(p.Cost) || !double.IsFinite(p.Score))
                throw new ArgumentException($"point '{p.Name}': cost and score must be finite, got ({p.Cost}, {p.Score})", nameof(points));
        sorted.Sort((a, b) => a.Cost != b.Cost ? a.Cost.CompareTo(b.Cost)
            : a.Score != b.Score ? b.Score.CompareTo(a.Score)
            : string.CompareOrdinal(a.Name, b.Name));

        // Sweep by increasing cost: a point survives if it beats every cheaper-or-equal point's score, or ties
        // exactly (same cost and score) with the point that set the best so far.
        var frontier = new List<FrontierPoint>();
        FrontierPoint? best = null;
        foreach (var p in sorted)
        {
            if (best is null || p.Score > best.Score) { frontier.Add(p); best = p; }
            else if (p.Score == best.Score && p.Cost == best.Cost) frontier.Add(p);
        }
        return frontier;
    }

    public static IReadOnlyList<FrontierPoint> Compute(IEnumerable<(string Name, double Cost, double Score)> points) =>
        Compute(points.Select(p => new FrontierPoint(p.Name, p.Cost, p.Score)));

    /// <summary>
    /// The study's frontier: held-in normalised score against relative FLOPs over the deployable strategies (a
    /// per-task oracle would otherwise hide every real choice behind it).
    /// </summary>
    public static IReadOnlyList<FrontierPoint> Compute(StudyResults results) =>
        Compute(results.Strategies.Where(s => s.Deployable).Select(s => new FrontierPoint(s.Name, s.RelativeFlops, s.HeldInNormalized)));
}
