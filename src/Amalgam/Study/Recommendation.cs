namespace Amalgam.Study;

/// <summary>A compute budget: at most <see cref="MaxRelativeFlops"/> times the base model's FLOPs per example.</summary>
public sealed record Budget(string Name, double MaxRelativeFlops)
{
    /// <summary>Relative slack for floating-point noise only: 1.0 + 1e-9 still counts as base cost.</summary>
    public const double Tolerance = 1e-9;

    public bool Allows(double relativeFlops) => relativeFlops <= MaxRelativeFlops * (1 + Tolerance);

    /// <summary>
    /// No more arithmetic than the base (folded merges, selection folded in); twice the base (cheap routing,
    /// two-expert ensembles); anything. Routing overhead gets no free pass at 1×: what it costs is the question.
    /// </summary>
    public static IReadOnlyList<Budget> Defaults { get; } =
        [new("base cost (≤ 1×)", 1.0), new("≤ 2× base", 2.0), new("any cost", double.PositiveInfinity)];
}

/// <summary>
/// The pick for one budget; <paramref name="Best"/> is null when no deployable strategy fits.
/// <paramref name="BetterNotDeployable"/> names the non-deployable references in budget that would rank above it.
/// </summary>
public sealed record BudgetPick(Budget Budget, StrategyResult? Best, IReadOnlyList<string> BetterNotDeployable)
{
    /// <summary>The highest-ranked deployable strategy in budget; differs from <see cref="Best"/> when a cheaper one is within noise of it.</summary>
    public StrategyResult? Top { get; init; }
    /// <summary>Deployable strategies in budget whose held-in difference to <see cref="Top"/> is within noise (the bootstrap's interval reaches 0), Top included.</summary>
    public IReadOnlyList<string> WithinNoise { get; init; } = [];
    /// <summary>A strategy just over the budget (within <see cref="Recommendation.EdgeMargin"/> of it) that scores above the pick.</summary>
    public StrategyResult? JustMissed { get; init; }
    /// <summary>
    /// Whether the pick beats the base model: beyond noise with a bootstrap (paired against the base strategy, or gap
    /// closed's interval above 0), on the point estimate without one; null when the study has no base to compare with.
    /// </summary>
    public bool? WorthDeploying { get; init; }
}

/// <summary>
/// What to deploy for a budget: among deployable strategies with relative_flops within it, the highest held-in
/// normalised score; ties broken by held-out score (none scored counts lowest), then lower relative FLOPs, then name.
/// With a bootstrap, the cheapest strategy (relative FLOPs, then stored parameters) whose held-in difference to that
/// best is within noise is picked instead: paying more for a difference the test set cannot show is not a choice.
/// Measured tokens/s never enter the choice (they are shown, with their spread).
/// </summary>
public static class Recommendation
{
    /// <summary>How far over a budget (as a fraction of it) a better strategy is named as "just missing" it.</summary>
    public const double EdgeMargin = 0.10;

    public static IReadOnlyList<BudgetPick> Compute(StudyResults results, IEnumerable<Budget>? budgets = null)
    {
        var boot = StudyBootstrap.For(results);
        return (budgets ?? Budget.Defaults).Select(b => Pick(results.Strategies, b, boot, results.BaseScores is null ? null : results)).ToList();
    }

    public static BudgetPick Pick(IEnumerable<StrategyResult> strategies, Budget budget) => Pick(strategies, budget, null, null);

    /// <param name="boot">the study's bootstrap: picks the cheapest strategy within noise of the best; null: the best</param>
    /// <param name="study">the study, for the base comparison (its <c>base</c> strategy or gap closed); null: not judged</param>
    public static BudgetPick Pick(IEnumerable<StrategyResult> strategies, Budget budget, StudyBootstrap? boot, StudyResults? study)
    {
        var all = strategies.ToList();
        var ranked = Rank(all.Where(s => budget.Allows(s.RelativeFlops))).ToList();
        var top = ranked.FirstOrDefault(s => s.Deployable);
        var better = ranked.TakeWhile(s => !s.Deployable).Select(s => s.Name).ToList();
        var best = top;
        var withinNoise = new List<string>();
        if (top is not null && boot is not null)
        {
            var near = ranked.Where(s => s.Deployable && (s == top || boot.Difference(boot.Of(top.Name).HeldIn, boot.Of(s.Name).HeldIn).Lo <= 0)).ToList();
            withinNoise = near.Select(s => s.Name).ToList();
            best = near.OrderBy(s => s.RelativeFlops).ThenBy(s => s.StoredParameters).ThenBy(s => ranked.IndexOf(s)).First();
        }
        StrategyResult? missed = null;
        if (best is not null && double.IsFinite(budget.MaxRelativeFlops))
            missed = Rank(all.Where(s => s.Deployable && !budget.Allows(s.RelativeFlops) && s.RelativeFlops <= budget.MaxRelativeFlops * (1 + EdgeMargin)))
                .FirstOrDefault(s => s.HeldInNormalized > best.HeldInNormalized);
        return new BudgetPick(budget, best, better)
        {
            Top = top, WithinNoise = withinNoise, JustMissed = missed, WorthDeploying = best is null || study is null ? null : BeatsBase(best, boot, study),
        };
    }

    static bool? BeatsBase(StrategyResult pick, StudyBootstrap? boot, StudyResults study)
    {
        if (pick.Family == Strategies.StrategyFamily.Reference && pick.Name == "base") return false;
        var baseline = study.Strategies.FirstOrDefault(s => s.Name == "base");
        if (boot is not null && baseline is not null) return boot.Difference(boot.Of(pick.Name).HeldIn, boot.Of(baseline.Name).HeldIn).Lo > 0;
        if (boot is not null && pick.GapClosedInterval is { } gap) return gap[0] > 0;
        if (baseline is not null) return pick.HeldInNormalized > baseline.HeldInNormalized;
        return pick.GapClosed is double g ? g > 0 : null;
    }

    /// <summary>Best first by the recommendation's order.</summary>
    public static IOrderedEnumerable<StrategyResult> Rank(IEnumerable<StrategyResult> strategies) =>
        strategies.OrderByDescending(s => s.HeldInNormalized)
            .ThenByDescending(s => s.HeldOut ?? double.NegativeInfinity)
            .ThenBy(s => s.RelativeFlops)
            .ThenBy(s => s.Name, StringComparer.Ordinal);
}
