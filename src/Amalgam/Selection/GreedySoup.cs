namespace Amalgam.Selection;

/// <summary>One candidate considered by <see cref="GreedySoup"/>: its own score, the soup's score with it, and whether it stayed.</summary>
public sealed record SoupStep(int Candidate, double IndividualScore, double ScoreWith, bool Accepted);

/// <summary>The chosen candidates (in the order added), the final soup's score and every step.</summary>
public sealed record GreedySoupResult(IReadOnlyList<int> Chosen, double Score, IReadOnlyList<SoupStep> Trace);

/// <summary>
/// Greedy soup (Wortsman et al. 2022, "Model soups"): candidates sorted by their individual validation score (higher
/// is better; ties by index), the soup starts as the best one, and each next candidate joins only if the soup's score
/// with it is at least the soup's score without it. Calls <c>soupScore</c> once per candidate (K calls in all).
/// </summary>
public static class GreedySoup
{
    /// <param name="individualScores">candidate i's validation score alone (higher is better)</param>
    /// <param name="soupScore">the validation score of the soup (e.g. a uniform merge) of the given candidates, listed ascending</param>
    public static GreedySoupResult Select(IReadOnlyList<double> individualScores, Func<IReadOnlyList<int>, double> soupScore)
    {
        ArgumentNullException.ThrowIfNull(individualScores);
        ArgumentNullException.ThrowIfNull(soupScore);
        if (individualScores.Count == 0) throw new ArgumentException("greedy soup: individualScores is empty", nameof(individualScores));
        for (int i = 0; i < individualScores.Count; i++)
            if (double.IsNaN(individualScores[i])) throw new ArgumentException($"greedy soup: individualScores[{i}] is NaN", nameof(individualScores));
        var order = Enumerable.Range(0, individualScores.Count).OrderByDescending(i => individualScores[i]).ThenBy(i => i).ToList();
        var soup = new List<int> { order[0] };
        double score = Score(soupScore, soup);
        var trace = new List<SoupStep> { new(order[0], individualScores[order[0]], score, true) };
        foreach (int candidate in order.Skip(1))
        {
            var with = soup.Append(candidate).ToList();
            double scoreWith = Score(soupScore, with);
            bool accept = scoreWith >= score;
            trace.Add(new SoupStep(candidate, individualScores[candidate], scoreWith, accept));
            if (accept) { soup = with; score = scoreWith; }
        }
        return new GreedySoupResult(soup, score, trace);
    }

    static double Score(Func<IReadOnlyList<int>, double> soupScore, List<int> set)
    {
        double s = soupScore(set.Order().ToList());
        if (double.IsNaN(s)) throw new InvalidOperationException($"greedy soup: soupScore([{string.Join(", ", set.Order())}]) is NaN");
        return s;
    }
}
