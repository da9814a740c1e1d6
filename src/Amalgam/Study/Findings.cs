using Amalgam.Strategies;
namespace Amalgam.Study;

public enum FindingStatus { Holds, DoesNotHold, NotTested }

/// <summary>One claim from the literature, checked on this study's numbers.</summary>
public sealed record Finding(string Id, string Claim, FindingStatus Status, string Evidence);

/// <summary>
/// Checks of the literature's claims on a study. Only deployable strategies take part; "best" means first by
/// <see cref="Recommendation.Rank"/> (held-in normalised score, then held-out, then cost). A claim "holds" on a
/// strict improvement of the held-in normalised score; an equal score does not hold. A check whose strategies are
/// missing is <see cref="FindingStatus.NotTested"/>, saying what is missing.
/// </summary>
public static class Findings
{
    public const string FittedEnsembling = "fitted-ensembling", FittedMerging = "fitted-merging",
        RoutingBeatsFusion = "routing-beats-fusion", SelectionKeepsGain = "selection-keeps-gain";

    /// <param name="results">the study</param>
    /// <param name="keptGainThreshold">the share of routing's gain over the best merge selection must keep to "hold"</param>
    public static IReadOnlyList<Finding> Compute(StudyResults results, double keptGainThreshold = 0.5)
    {
        var s = results.Strategies.Where(x => x.Deployable).ToList();
        return
        [
            FittedBeatsUniform(s, StrategyFamily.Ensemble, FittedEnsembling, "Non-uniform (fitted) ensemble weights beat uniform ensembling."),
            FittedBeatsUniform(s, StrategyFamily.Merge, FittedMerging, "Fitted merging weights beat uniform merging."),
            RoutingBeats(s),
            SelectionKeeps(s, keptGainThreshold),
        ];
    }

    static StrategyResult? Best(IEnumerable<StrategyResult> s) => Recommendation.Rank(s).FirstOrDefault();

    static string Show(StrategyResult s) => $"'{s.Name}' {StudyFormat.Score(s.HeldInNormalized)}";

    static Finding FittedBeatsUniform(List<StrategyResult> s, string family, string id, string claim)
    {
        var fitted = Best(s.Where(x => x.Family == family && x.Variant == StrategyVariant.Fitted));
        var uniform = Best(s.Where(x => x.Family == family && x.Variant == StrategyVariant.Uniform));
        if (fitted is null || uniform is null)
            return new(id, claim, FindingStatus.NotTested,
                $"no deployable {family} strategy tagged '{(fitted is null ? StrategyVariant.Fitted : StrategyVariant.Uniform)}'");
        double d = fitted.HeldInNormalized - uniform.HeldInNormalized;
        return new(id, claim, d > 0 ? FindingStatus.Holds : FindingStatus.DoesNotHold,
            $"best fitted {Show(fitted)} vs best uniform {Show(uniform)} held-in normalised ({StudyFormat.Signed(d)}); " +
            $"held-out {StudyFormat.Score(fitted.HeldOut)} vs {StudyFormat.Score(uniform.HeldOut)}");
    }

    static Finding RoutingBeats(List<StrategyResult> s)
    {
        const string claim = "Routing beats the best ensemble and the best merge.";
        var route = Best(s.Where(x => x.Family == StrategyFamily.Route));
        var rivals = new[] { StrategyFamily.Ensemble, StrategyFamily.Merge }
            .Select(f => (Family: f, Best: Best(s.Where(x => x.Family == f)))).Where(r => r.Best is not null).ToList();
        if (route is null) return new(RoutingBeatsFusion, claim, FindingStatus.NotTested, "no deployable routing strategy");
        if (rivals.Count == 0) return new(RoutingBeatsFusion, claim, FindingStatus.NotTested, "no deployable ensemble or merge to compare with");
        bool holds = rivals.All(r => route.HeldInNormalized > r.Best!.HeldInNormalized);
        var parts = rivals.Select(r => $"best {r.Family} {Show(r.Best!)} ({StudyFormat.Signed(route.HeldInNormalized - r.Best!.HeldInNormalized)})");
        string missing = rivals.Count < 2 ? $"; no deployable {(rivals[0].Family == StrategyFamily.Merge ? StrategyFamily.Ensemble : StrategyFamily.Merge)} to compare with" : "";
        return new(RoutingBeatsFusion, claim, holds ? FindingStatus.Holds : FindingStatus.DoesNotHold,
            $"best route {Show(route)} vs {string.Join(", ", parts)} held-in normalised{missing}");
    }

    static Finding SelectionKeeps(List<StrategyResult> s, double threshold)
    {
        string claim = $"Expert selection (clustering or greedy subsets) keeps at least {StudyFormat.Percent(threshold)} of routing's gain over the best merge at less than routing's cost.";
        var select = Best(s.Where(x => x.Family == StrategyFamily.Select));
        var route = Best(s.Where(x => x.Family == StrategyFamily.Route));
        var merge = Best(s.Where(x => x.Family == StrategyFamily.Merge));
        if (select is null || route is null || merge is null)
            return new(SelectionKeepsGain, claim, FindingStatus.NotTested,
                $"no deployable {(select is null ? "selection" : route is null ? "routing" : "merge")} strategy");
        double gain = route.HeldInNormalized - merge.HeldInNormalized;
        if (gain <= 0)
            return new(SelectionKeepsGain, claim, FindingStatus.NotTested,
                $"routing has no gain to keep: best route {Show(route)} vs best merge {Show(merge)}");
        double kept = (select.HeldInNormalized - merge.HeldInNormalized) / gain;
        double cost = select.RelativeFlops / route.RelativeFlops;
        bool holds = kept >= threshold && cost < 1;
        string variant = select.Variant is null ? "" : $" ({select.Variant})";
        return new(SelectionKeepsGain, claim, holds ? FindingStatus.Holds : FindingStatus.DoesNotHold,
            $"best selection {Show(select)}{variant} keeps {StudyFormat.Percent(kept)} of routing's gain over the best merge " +
            $"(route {Show(route)}, merge {Show(merge)}) at {StudyFormat.Percent(cost)} of routing's FLOPs " +
            $"({StudyFormat.Flops(select.RelativeFlops)}× vs {StudyFormat.Flops(route.RelativeFlops)}×)");
    }
}
