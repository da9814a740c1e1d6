using Amalgam.Strategies;

namespace Amalgam.Study;

/// <summary>
/// What each router feature source costs and scores: the routing strategies that record
/// <c>details.feature_source</c>, grouped by it, each group's best (by <see cref="Recommendation.Rank"/>) with its
/// held-in normalised score, held-out score and relative FLOPs (the features' pass included).
/// </summary>
public static class FeatureSources
{
    public sealed record Row(string Source, StrategyResult Best, int Strategies);

    public static IReadOnlyList<Row> Compute(StudyResults r) =>
        r.Strategies.Where(s => s.Family == StrategyFamily.Route && s.Deployable && Source(s) is not null)
            .GroupBy(s => Source(s)!)
            .Select(g => new Row(g.Key, Recommendation.Rank(g).First(), g.Count()))
            .OrderBy(row => row.Best.RelativeFlops).ThenBy(row => row.Source, StringComparer.Ordinal).ToList();

    public static string? Source(StrategyResult s) =>
        s.Details?["feature_source"] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue(out string? source) ? source : null;

    /// <summary>One line for report.md; null when no strategy records a feature source.</summary>
    public static string? Line(StudyResults r)
    {
        var rows = Compute(r);
        if (rows.Count == 0) return null;
        return "Router feature sources (best routing strategy per source, FLOPs include the features' pass): " +
               string.Join("; ", rows.Select(x => $"{x.Source}: `{x.Best.Name}` {StudyFormat.Score(x.Best.HeldInNormalized)} held-in normalised, " +
                                                   $"{StudyFormat.Score(x.Best.HeldOut)} held-out at {StudyFormat.Flops(x.Best.RelativeFlops)}×")) + ".";
    }
}
