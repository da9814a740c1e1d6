namespace Amalgam.Selection;

/// <summary>One round of <see cref="GreedyRoutingSubset"/>: the expert added, the set after it (ascending) and its score.</summary>
public sealed record SubsetStep(int Added, IReadOnlyList<int> Set, double Score);

/// <summary>
/// The chosen experts (ascending), their routed score, the score with all experts, the target it had to reach
/// (full − tolerance), every round, and how many times the score function was called.
/// </summary>
public sealed record RoutingSubsetResult(IReadOnlyList<int> Chosen, double Score, double FullScore, double Target, IReadOnlyList<SubsetStep> Trace, int Evaluations);

/// <summary>
/// The smallest expert set greedy forward selection finds whose routed score is within a tolerance of routing over
/// all experts: start empty, each round add the expert that raises the score most (ties: lowest index), stop as soon
/// as score(set) ≥ score(all) − tolerance. At most 1 + K(K+1)/2 score calls; greedy, so not guaranteed minimal.
/// </summary>
public static class GreedyRoutingSubset
{
    /// <param name="experts">K, the number of experts (indices 0..K−1)</param>
    /// <param name="routedScore">the score (higher is better) when routing only among the given experts, listed ascending</param>
    /// <param name="tolerance">how far below the all-experts score the subset may be (≥ 0)</param>
    public static RoutingSubsetResult Select(int experts, Func<IReadOnlyList<int>, double> routedScore, double tolerance)
    {
        ArgumentNullException.ThrowIfNull(routedScore);
        if (experts < 1) throw new ArgumentException($"routing subset: experts = {experts}, must be at least 1", nameof(experts));
        if (!(tolerance >= 0)) throw new ArgumentException($"routing subset: tolerance = {tolerance}, must be ≥ 0", nameof(tolerance));
        int evaluations = 0;
        double Score(IReadOnlyList<int> set)
        {
            evaluations++;
            double s = routedScore(set);
            if (double.IsNaN(s)) throw new InvalidOperationException($"routing subset: routedScore([{string.Join(", ", set)}]) is NaN");
            return s;
        }
        double full = Score(Enumerable.Range(0, experts).ToList());
        double target = full - tolerance;
        var chosen = new List<int>();
        var trace = new List<SubsetStep>();
        double score = double.NegativeInfinity;
        while (chosen.Count < experts && !(score >= target))
        {
            int bestExpert = -1;
            double bestScore = double.NegativeInfinity;
            IReadOnlyList<int> bestSet = [];
            for (int e = 0; e < experts; e++)
            {
                if (chosen.Contains(e)) continue;
                var set = chosen.Append(e).Order().ToList();
                double s = Score(set);
                if (bestExpert < 0 || s > bestScore) { bestExpert = e; bestScore = s; bestSet = set; }
            }
            chosen.Add(bestExpert);
            score = bestScore;
            trace.Add(new SubsetStep(bestExpert, bestSet, bestScore));
        }
        return new RoutingSubsetResult(chosen.Order().ToList(), score, full, target, trace, evaluations);
    }

    /// <summary>
    /// The routed top-1 score for precomputed tables: for a subset S, the mean over examples n of
    /// correct[n, argmax_{e∈S} probs[n, e]] (ties: the lowest expert index). <paramref name="correct"/>[n, e] is 0/1
    /// (or any score) of expert e alone on example n; <paramref name="routerProbabilities"/>[n, e] the router's
    /// probability (or logit) for expert e.
    /// </summary>
    public static Func<IReadOnlyList<int>, double> RoutedTop1Score(double[,] correct, double[,] routerProbabilities)
    {
        ArgumentNullException.ThrowIfNull(correct);
        ArgumentNullException.ThrowIfNull(routerProbabilities);
        int n = correct.GetLength(0), k = correct.GetLength(1);
        if (routerProbabilities.GetLength(0) != n || routerProbabilities.GetLength(1) != k)
            throw new ArgumentException($"routed top-1: routerProbabilities is [{routerProbabilities.GetLength(0)}, {routerProbabilities.GetLength(1)}] but correct is [{n}, {k}]", nameof(routerProbabilities));
        if (n == 0) throw new ArgumentException("routed top-1: no examples", nameof(correct));
        var c = (double[,])correct.Clone();
        var p = (double[,])routerProbabilities.Clone();
        return subset =>
        {
            if (subset.Count == 0) throw new ArgumentException("routed top-1: the subset is empty", nameof(subset));
            foreach (int e in subset) if (e < 0 || e >= k) throw new ArgumentException($"routed top-1: expert {e} is outside 0..{k - 1}", nameof(subset));
            var members = subset.Order().ToArray();
            double total = 0;
            for (int row = 0; row < n; row++)
            {
                int pick = members[0];
                foreach (int e in members) if (p[row, e] > p[row, pick]) pick = e;
                total += c[row, pick];
            }
            return total / n;
        };
    }
}
