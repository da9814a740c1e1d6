using System.Text.Json.Nodes;

namespace Amalgam.Study;

/// <summary>A closed interval [Lo, Hi] of a score (a bootstrap's 95 % interval).</summary>
public readonly record struct ScoreInterval(double Lo, double Hi);

/// <summary>
/// The optional per-strategy numbers report.html shows when results.json has them (the bootstrap's intervals and
/// gap closed), read by their results.json names from the serialised results, so the report draws what the file
/// holds and leaves out, without failing, what it does not. <c>held_in_interval</c>, <c>gap_closed</c>,
/// <c>gap_closed_interval</c>, <c>held_out_interval</c> per strategy; <c>bootstrap</c> at the top.
/// </summary>
public sealed record StrategyExtras(ScoreInterval? HeldIn, double? GapClosed, ScoreInterval? GapClosedInterval, ScoreInterval? HeldOut,
    string? FeatureSource)
{
    public static StrategyExtras None { get; } = new(null, null, null, null, null);
}

public static class ReportExtras
{
    /// <summary>Every strategy's extras, in results order, and the top-level bootstrap settings (null if absent).</summary>
    public static (IReadOnlyList<StrategyExtras> Strategies, JsonObject? Bootstrap) Read(StudyResults results) =>
        Read(JsonNode.Parse(StudyResultsFile.ToJson(results))!.AsObject(), results.Strategies.Count);

    /// <summary>The same from a results.json object (tests add fields to one).</summary>
    public static (IReadOnlyList<StrategyExtras> Strategies, JsonObject? Bootstrap) Read(JsonObject json, int strategies)
    {
        var list = json["strategies"] as JsonArray;
        var extras = Enumerable.Range(0, strategies).Select(i => list is not null && i < list.Count && list[i] is JsonObject s ? Of(s) : StrategyExtras.None).ToList();
        return (extras, json["bootstrap"] as JsonObject);
    }

    static StrategyExtras Of(JsonObject s) =>
        new(Interval(s["held_in_interval"]), Number(s["gap_closed"]), Interval(s["gap_closed_interval"]), Interval(s["held_out_interval"]),
            (s["details"] as JsonObject)?["feature_source"] is JsonValue v && v.TryGetValue(out string? source) ? source : null);

    static double? Number(JsonNode? n) =>
        n is JsonValue v && v.TryGetValue(out double d) && double.IsFinite(d) ? d : null;

    /// <summary>[lo, hi] with lo ≤ hi, both finite; anything else counts as absent.</summary>
    static ScoreInterval? Interval(JsonNode? n) =>
        n is JsonArray { Count: 2 } a && Number(a[0]) is double lo && Number(a[1]) is double hi && lo <= hi ? new ScoreInterval(lo, hi) : null;
}
