using Amalgam.Strategies;
namespace Amalgam.Study;

/// <summary>How a claim fared: <see cref="WithinNoise"/> when the bootstrap interval of the deciding difference straddles the line.</summary>
public enum FindingStatus { Holds, DoesNotHold, NotTested, WithinNoise }

/// <summary>One claim from the literature, checked on this study's numbers.</summary>
public sealed record Finding(string Id, string Claim, FindingStatus Status, string Evidence);

/// <summary>
/// Checks of the literature's claims on a study. Only deployable strategies take part; "best" means first by
/// <see cref="Recommendation.Rank"/> (held-in normalised score, then held-out, then cost). Without a bootstrap a
/// claim "holds" on a strict improvement of the held-in normalised score (an equal score does not hold). With one
/// (<see cref="StudyBootstrap"/>), the claim is decided on the paired interval of the deciding difference: it holds
/// when the whole interval is above 0, does not hold when it is at or below 0, and is within noise otherwise. A check
/// whose strategies are missing is <see cref="FindingStatus.NotTested"/>, saying what is missing.
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
        var boot = StudyBootstrap.For(results);
        return
        [
            FittedBeatsUniform(s, boot, StrategyFamily.Ensemble, FittedEnsembling, "Non-uniform (fitted) ensemble weights beat uniform ensembling."),
            FittedBeatsUniform(s, boot, StrategyFamily.Merge, FittedMerging, "Fitted merging weights beat uniform merging."),
            RoutingBeats(s, boot),
            SelectionKeeps(s, boot, keptGainThreshold),
        ];
    }

    static StrategyResult? Best(IEnumerable<StrategyResult> s) => Recommendation.Rank(s).FirstOrDefault();

    static string Show(StrategyResult s) =>
        $"'{s.Name}' {StudyFormat.Score(s.HeldInNormalized)}" + (s.HeldInInterval is { } i ? $" {StudyFormat.Interval(i)}" : "");

    /// <summary>The status of "a − b &gt; 0" and the interval text ("" without a bootstrap).</summary>
    static (FindingStatus Status, string Interval) Decide(double point, double[]? replicates, StudyBootstrap? boot)
    {
        if (boot is null || replicates is null) return (point > 0 ? FindingStatus.Holds : FindingStatus.DoesNotHold, "");
        var i = boot.Interval(replicates);
        var status = i.Lo > 0 ? FindingStatus.Holds : i.Hi <= 0 ? FindingStatus.DoesNotHold : FindingStatus.WithinNoise;
        return (status, $" [{StudyFormat.Percent(boot.Settings.Level)} interval of the difference {StudyFormat.SignedInterval(i)}]");
    }

    static double[]? Minus(StudyBootstrap? boot, StrategyResult a, StrategyResult b) =>
        boot is null ? null : boot.Of(a.Name).HeldIn.Select((v, i) => v - boot.Of(b.Name).HeldIn[i]).ToArray();

    static string Gap(StrategyResult a, StrategyResult b) =>
        a.GapClosed is double ga && b.GapClosed is double gb ? $"; gap closed {StudyFormat.Score(ga)} vs {StudyFormat.Score(gb)}" : "";

    static Finding FittedBeatsUniform(List<StrategyResult> s, StudyBootstrap? boot, string family, string id, string claim)
    {
        var fitted = Best(s.Where(x => x.Family == family && x.Variant == StrategyVariant.Fitted));
        var uniform = Best(s.Where(x => x.Family == family && x.Variant == StrategyVariant.Uniform));
        if (fitted is null || uniform is null)
            return new(id, claim, FindingStatus.NotTested,
                $"no deployable {family} strategy tagged '{(fitted is null ? StrategyVariant.Fitted : StrategyVariant.Uniform)}'");
        double d = fitted.HeldInNormalized - uniform.HeldInNormalized;
        var (status, interval) = Decide(d, Minus(boot, fitted, uniform), boot);
        return new(id, claim, status,
            $"best fitted {Show(fitted)} vs best uniform {Show(uniform)} held-in normalised ({StudyFormat.Signed(d)}){interval}{Gap(fitted, uniform)}; " +
            $"held-out {StudyFormat.Score(fitted.HeldOut)} vs {StudyFormat.Score(uniform.HeldOut)}");
    }

    static Finding RoutingBeats(List<StrategyResult> s, StudyBootstrap? boot)
    {
        const string claim = "Routing beats the best ensemble and the best merge.";
        var route = Best(s.Where(x => x.Family == StrategyFamily.Route));
        var rivals = new[] { StrategyFamily.Ensemble, StrategyFamily.Merge }
            .Select(f => (Family: f, Best: Best(s.Where(x => x.Family == f)))).Where(r => r.Best is not null).ToList();
        if (route is null) return new(RoutingBeatsFusion, claim, FindingStatus.NotTested, "no deployable routing strategy");
        if (rivals.Count == 0) return new(RoutingBeatsFusion, claim, FindingStatus.NotTested, "no deployable ensemble or merge to compare with");
        var decided = rivals.Select(r =>
        {
            double d = route.HeldInNormalized - r.Best!.HeldInNormalized;
            var (status, interval) = Decide(d, Minus(boot, route, r.Best), boot);
            return (Status: status, Text: $"best {r.Family} {Show(r.Best)} ({StudyFormat.Signed(d)}){interval}");
        }).ToList();
        var overall = decided.All(x => x.Status == FindingStatus.Holds) ? FindingStatus.Holds
            : decided.Any(x => x.Status == FindingStatus.DoesNotHold) ? FindingStatus.DoesNotHold : FindingStatus.WithinNoise;
        string missing = rivals.Count < 2 ? $"; no deployable {(rivals[0].Family == StrategyFamily.Merge ? StrategyFamily.Ensemble : StrategyFamily.Merge)} to compare with" : "";
        return new(RoutingBeatsFusion, claim, overall,
            $"best route {Show(route)} vs {string.Join(", ", decided.Select(x => x.Text))} held-in normalised{missing}");
    }

    static Finding SelectionKeeps(List<StrategyResult> s, StudyBootstrap? boot, double threshold)
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
        // Kept ≥ threshold ⇔ (select − merge) − threshold·(route − merge) ≥ 0: a difference the bootstrap can bound.
        double[]? margin = boot is null ? null : Enumerable.Range(0, boot.Settings.Samples).Select(b =>
        {
            double sel = boot.Of(select.Name).HeldIn[b], rt = boot.Of(route.Name).HeldIn[b], mg = boot.Of(merge.Name).HeldIn[b];
            return sel - mg - threshold * (rt - mg);
        }).ToArray();
        var (status, _) = Decide(kept >= threshold ? Math.Max(kept - threshold, double.Epsilon) : kept - threshold, margin, boot);
        if (cost >= 1) status = FindingStatus.DoesNotHold;
        string variant = select.Variant is null ? "" : $" ({select.Variant})";
        string marginText = margin is null ? ""
            : $" ({StudyFormat.Percent(boot!.Settings.Level)} interval of (select − merge) − {threshold.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture)}·(route − merge) {StudyFormat.SignedInterval(boot.Interval(margin))})";
        return new(SelectionKeepsGain, claim, status,
            $"best selection {Show(select)}{variant} keeps {StudyFormat.Percent(kept)} of routing's gain over the best merge{marginText} " +
            $"(route {Show(route)}, merge {Show(merge)}) at {StudyFormat.Percent(cost)} of routing's FLOPs " +
            $"({StudyFormat.Flops(select.RelativeFlops)}× vs {StudyFormat.Flops(route.RelativeFlops)}×)");
    }
}
