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
public sealed record BudgetPick(Budget Budget, StrategyResult? Best, IReadOnlyList<string> BetterNotDeployable);

/// <summary>
/// What to deploy for a budget: among deployable strategies with relative_flops within it, the highest held-in
/// normalised score; ties broken by held-out score (none scored counts lowest), then lower relative FLOPs, then name.
/// </summary>
public static class Recommendation
{
    public static IReadOnlyList<BudgetPick> Compute(StudyResults results, IEnumerable<Budget>? budgets = null) =>
        (budgets ?? Budget.Defaults).Select(b => Pick(results.Strategies, b)).ToList();

    public static BudgetPick Pick(IEnumerable<StrategyResult> strategies, Budget budget)
    {
        var ranked = Rank(strategies.Where(s => budget.Allows(s.RelativeFlops))).ToList();
        var best = ranked.FirstOrDefault(s => s.Deployable);
        var better = ranked.TakeWhile(s => !s.Deployable).Select(s => s.Name).ToList();
        return new BudgetPick(budget, best, better);
    }

    /// <summary>Best first by the recommendation's order.</summary>
    public static IOrderedEnumerable<StrategyResult> Rank(IEnumerable<StrategyResult> strategies) =>
        strategies.OrderByDescending(s => s.HeldInNormalized)
            .ThenByDescending(s => s.HeldOut ?? double.NegativeInfinity)
            .ThenBy(s => s.RelativeFlops)
            .ThenBy(s => s.Name, StringComparer.Ordinal);
}
