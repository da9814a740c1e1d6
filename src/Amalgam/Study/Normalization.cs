namespace Amalgam.Study;

/// <summary>
/// The study's quality numbers. Held-in: Twin-Merging's normalised score, the mean over held-in tasks t of
/// score_t / expert_t, so 1.0 means "as good as every task's own expert" (it can exceed 1). A task whose expert
/// scores 0 has no meaningful ratio and is skipped (<see cref="SkippedTasks"/>; report.md says which). Gap closed:
/// the mean over held-in tasks of (score_t − base_t) / (expert_t − base_t), 0 = the base model, 1 = the expert
/// (FusionBench's view: with a capable base, a merge can be 92 % normalised yet close a fifth of the gap); tasks
/// whose expert does not beat the base are skipped (<see cref="GapSkippedTasks"/>). Held-out: the plain mean of the
/// held-out tasks' scores (they have no expert to normalise by).
/// </summary>
public static class Normalization
{
    /// <summary>Held-in tasks left out of the normalised mean because their expert scored 0 (or has no score).</summary>
    public static IReadOnlyList<string> SkippedTasks(IEnumerable<StudyTask> tasks, IReadOnlyDictionary<string, double> expertScores) =>
        tasks.Where(t => !t.HeldOut && !(expertScores.TryGetValue(t.Name, out var e) && e > 0)).Select(t => t.Name).ToList();

    /// <summary>Mean over held-in tasks (expert score &gt; 0) of score / expert score.</summary>
    /// <exception cref="ArgumentException">a held-in task missing from <paramref name="perTask"/>, or every expert at 0</exception>
    public static double HeldIn(IReadOnlyDictionary<string, double> perTask, IEnumerable<StudyTask> tasks, IReadOnlyDictionary<string, double> expertScores)
    {
        double sum = 0;
        int n = 0;
        foreach (var t in tasks.Where(t => !t.HeldOut))
        {
            if (!(expertScores.TryGetValue(t.Name, out var expert) && expert > 0)) continue;
            if (!perTask.TryGetValue(t.Name, out var score))
                throw new ArgumentException($"per_task: held-in task '{t.Name}' has no score", nameof(perTask));
            sum += score / expert;
            n++;
        }
        if (n == 0) throw new ArgumentException("expert_scores: no held-in task has an expert score above 0, so the normalised score is undefined", nameof(expertScores));
        return sum / n;
    }

    /// <summary>Held-in tasks left out of gap closed because their expert does not beat the base (or either score is missing).</summary>
    public static IReadOnlyList<string> GapSkippedTasks(IEnumerable<StudyTask> tasks, IReadOnlyDictionary<string, double> expertScores,
        IReadOnlyDictionary<string, double> baseScores) =>
        tasks.Where(t => !t.HeldOut && !(expertScores.TryGetValue(t.Name, out var e) && baseScores.TryGetValue(t.Name, out var b) && e > b))
            .Select(t => t.Name).ToList();

    /// <summary>Mean over held-in tasks whose expert beats the base of (score − base) / (expert − base); null when no task qualifies.</summary>
    /// <exception cref="ArgumentException">a qualifying held-in task missing from <paramref name="perTask"/></exception>
    public static double? GapClosed(IReadOnlyDictionary<string, double> perTask, IEnumerable<StudyTask> tasks,
        IReadOnlyDictionary<string, double> expertScores, IReadOnlyDictionary<string, double> baseScores)
    {
        double sum = 0;
        int n = 0;
        foreach (var t in tasks.Where(t => !t.HeldOut))
        {
            if (!(expertScores.TryGetValue(t.Name, out var e) && baseScores.TryGetValue(t.Name, out var b) && e > b)) continue;
            if (!perTask.TryGetValue(t.Name, out var score))
                throw new ArgumentException($"per_task: held-in task '{t.Name}' has no score", nameof(perTask));
            sum += (score - b) / (e - b);
            n++;
        }
        return n == 0 ? null : sum / n;
    }

    /// <summary>Mean score over held-out tasks; null when none of them was scored.</summary>
    /// <exception cref="ArgumentException">some but not all held-out tasks scored</exception>
    public static double? HeldOut(IReadOnlyDictionary<string, double> perTask, IEnumerable<StudyTask> tasks)
    {
        var heldOut = tasks.Where(t => t.HeldOut).ToList();
        var scored = heldOut.Where(t => perTask.ContainsKey(t.Name)).ToList();
        if (scored.Count == 0) return null;
        if (scored.Count < heldOut.Count)
            throw new ArgumentException($"per_task: held-out task '{heldOut.First(t => !perTask.ContainsKey(t.Name)).Name}' has no score (score every held-out task or none)", nameof(perTask));
        return scored.Average(t => perTask[t.Name]);
    }

    /// <summary>
    /// The strategy with <c>held_in_normalized</c>, <c>held_out</c> and (given the base's scores) <c>gap_closed</c>
    /// computed from its <c>per_task</c>.
    /// </summary>
    public static StrategyResult Fill(StrategyResult strategy, IEnumerable<StudyTask> tasks, IReadOnlyDictionary<string, double> expertScores,
        IReadOnlyDictionary<string, double>? baseScores = null)
    {
        var list = tasks as IReadOnlyCollection<StudyTask> ?? tasks.ToList();
        return strategy with
        {
            HeldInNormalized = HeldIn(strategy.PerTask, list, expertScores),
            HeldOut = HeldOut(strategy.PerTask, list),
            GapClosed = baseScores is null ? null : GapClosed(strategy.PerTask, list, expertScores, baseScores),
        };
    }
}
