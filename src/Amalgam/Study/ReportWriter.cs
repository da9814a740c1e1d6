using System.Text;
using Amalgam.Tensors;

namespace Amalgam.Study;

/// <summary>
/// report.md: the summary table, scores per task, the Pareto frontier, what to deploy per budget, the findings and
/// the plots, every number printed by <see cref="StudyFormat"/> from the same values results.json holds.
/// </summary>
public static class ReportWriter
{
    public const string FileName = "report.md";

    /// <summary>The summary table's header, one column per field: tests and tools parse the table by it.</summary>
    public static IReadOnlyList<string> SummaryColumns { get; } =
        ["strategy", "family", "variant", "held-in normalised", "held-in interval", "gap closed", "gap closed interval", "held-out", "held-out interval",
         "relative FLOPs", "tokens/s", "tokens/s spread", "stored parameters", "fit s", "deployable"];

    /// <summary>Writes report.md into <paramref name="outDir"/> (created if needed) atomically; returns its path.</summary>
    public static string Write(StudyResults results, string outDir)
    {
        Directory.CreateDirectory(outDir);
        string path = Path.Combine(outDir, FileName);
        AtomicFile.WriteAllText(path, Render(results));
        return path;
    }

    public static string Render(StudyResults r)
    {
        var md = new StringBuilder();
        int heldIn = r.HeldInTasks.Count(), heldOut = r.HeldOutTasks.Count();
        md.AppendLine($"# Study: {r.Suite}").AppendLine();
        md.AppendLine($"{r.Strategies.Count} strategies on {heldIn} held-in and {heldOut} held-out tasks ({r.Split} split), " +
                      $"seed {r.Seed}, {r.Machine.Cores} cores ({r.Machine.Device}), {StudyFormat.Seconds(r.TotalSeconds)} s in all, " +
                      $"{r.CreatedAt.UtcDateTime:yyyy-MM-dd HH:mm} UTC. Base model `{r.BaseModel.Path}` ({r.BaseModel.Architecture}, " +
                      $"{StudyFormat.Count(r.BaseModel.Parameters)} parameters, {StudyFormat.Seconds(r.BaseModel.PromptTokens)} prompt + " +
                      $"{StudyFormat.Seconds(r.BaseModel.AnswerTokens)} answer tokens per example).").AppendLine();
        md.AppendLine("Held-in normalised: mean over held-in tasks of score / the task's expert score (1.000 = every expert on its own task). " +
                      "Gap closed: mean over held-in tasks of (score − base) / (expert − base) (0 = the base model, 1 = the experts). " +
                      "Held-out: mean score. Relative FLOPs: FLOPs per example over the base model's (docs/study.md).");
        var skipped = Normalization.SkippedTasks(r.Tasks, r.ExpertScores);
        if (skipped.Count > 0)
            md.AppendLine().AppendLine($"Left out of the normalised score because their expert scores 0: {string.Join(", ", skipped)}.");
        if (r.BaseScores is { } baseScores && Normalization.GapSkippedTasks(r.Tasks, r.ExpertScores, baseScores) is { Count: > 0 } gapSkipped)
            md.AppendLine().AppendLine($"Left out of gap closed because their expert does not beat the base: " +
                string.Join(", ", gapSkipped.Select(t => $"{t} (expert {StudyFormat.Score(r.ExpertScores.GetValueOrDefault(t))}, base {StudyFormat.Score(baseScores.GetValueOrDefault(t))})")) + ".");
        if (r.Bootstrap is { } boot) md.AppendLine().AppendLine(IntervalWidths(r, boot));
        if (r.Skipped is { Count: > 0 } left)
        {
            md.AppendLine().AppendLine("Not run:");
            foreach (var x in left) md.AppendLine($"- `{x.Name}`: {x.Reason}");
        }
        md.AppendLine();

        md.AppendLine("## Summary").AppendLine();
        Row(md, SummaryColumns);
        Rule(md, SummaryColumns.Count);
        foreach (var s in r.Strategies)
            Row(md, [s.Name, s.Family, s.Variant ?? "", StudyFormat.Score(s.HeldInNormalized), StudyFormat.Interval(s.HeldInInterval),
                StudyFormat.Score(s.GapClosed), StudyFormat.Interval(s.GapClosedInterval), StudyFormat.Score(s.HeldOut), StudyFormat.Interval(s.HeldOutInterval),
                StudyFormat.Flops(s.RelativeFlops), StudyFormat.TokensPerSecond(s.TokensPerSecond) + (s.TokensPerSecondFrom is { } from ? $" (= {from})" : ""),
                s.TokensPerSecondSpread is double sp ? StudyFormat.Percent(sp) + (StudyFormat.Stable(sp) ? "" : " (unstable)") : "—",
                StudyFormat.Count(s.StoredParameters), StudyFormat.Seconds(s.FitSeconds), s.Deployable ? "yes" : "no"]);
        var sharedProbe = r.Strategies.Where(s => s.TokensPerSecondFrom is not null).ToList();
        var sharedEval = r.Strategies.Where(s => s.EvaluationFrom is not null).ToList();
        if (sharedProbe.Count > 0)
            md.AppendLine().AppendLine("\"(= name)\": tokens/s measured once for strategies that run the same ops on the same shapes (a folded merge runs as the base; " +
                "ensembles differing only in weights): " + string.Join(", ", sharedProbe.Select(s => $"`{s.Name}` from `{s.TokensPerSecondFrom}`")) + ".");
        if (sharedEval.Count > 0)
            md.AppendLine().AppendLine("Evaluated once, because they compute exactly the same function: " +
                string.Join(", ", sharedEval.Select(s => $"`{s.Name}` reuses `{s.EvaluationFrom}`'s test scores")) + ".");
        md.AppendLine();

        md.AppendLine("## Scores per task").AppendLine();
        var header = new List<string> { "strategy" };
        header.AddRange(r.Tasks.Select(t => t.HeldOut ? $"{t.Name} (held out)" : t.Name));
        Row(md, header);
        Rule(md, header.Count);
        var expertRow = new List<string> { "*expert on own task*" };
        expertRow.AddRange(r.Tasks.Select(t => r.ExpertScores.TryGetValue(t.Name, out var e) ? StudyFormat.Score(e) : "—"));
        Row(md, expertRow);
        if (r.BaseScores is { } bs)
        {
            var baseRow = new List<string> { "*base model*" };
            baseRow.AddRange(r.Tasks.Select(t => bs.TryGetValue(t.Name, out var b) ? StudyFormat.Score(b) : "—"));
            Row(md, baseRow);
        }
        foreach (var s in r.Strategies)
        {
            var row = new List<string> { s.Name };
            row.AddRange(r.Tasks.Select(t => s.PerTask.TryGetValue(t.Name, out var v) ? StudyFormat.Score(v) : "—"));
            Row(md, row);
        }
        md.AppendLine();

        md.AppendLine("## Pareto frontier").AppendLine();
        md.AppendLine("Deployable strategies that no other deployable strategy beats on both held-in normalised score and relative FLOPs, cheapest first:").AppendLine();
        foreach (var p in ParetoFrontier.Compute(r))
        {
            var s = r.Strategy(p.Name);
            md.AppendLine($"- `{p.Name}` ({s.Family}): {StudyFormat.Score(p.Score)} at {StudyFormat.Flops(p.Cost)}× base FLOPs");
        }
        md.AppendLine();

        if (FeatureSources.Line(r) is { } features) md.AppendLine(features).AppendLine();

        md.AppendLine("## Recommendation").AppendLine();
        md.AppendLine(r.Bootstrap is null
            ? "Best deployable strategy within each budget (held-in normalised score, then held-out, then lower cost):"
            : "Within each budget, the cheapest deployable strategy (relative FLOPs, then stored parameters) whose held-in normalised score is " +
              "within noise of the best one's (the paired bootstrap interval of the difference reaches 0); tokens/s never decide:").AppendLine();
        foreach (var pick in Recommendation.Compute(r))
        {
            string line = pick.Best is { } b
                ? $"- **{pick.Budget.Name}**: `{b.Name}` ({b.Family}) — {StudyFormat.Score(b.HeldInNormalized)} held-in normalised" +
                  (b.HeldInInterval is { } hi ? $" {StudyFormat.Interval(hi)}" : "") + (b.GapClosed is double g ? $", gap closed {StudyFormat.Score(g)}" : "") + ", " +
                  $"{StudyFormat.Score(b.HeldOut)} held-out, {StudyFormat.Flops(b.RelativeFlops)}× FLOPs, {TokensPerSecond(b)}, " +
                  $"{StudyFormat.Count(b.StoredParameters)} stored parameters"
                : $"- **{pick.Budget.Name}**: no deployable strategy fits";
            if (pick.BetterNotDeployable.Count > 0)
                line += $" (ranked above it but not deployable: {string.Join(", ", pick.BetterNotDeployable.Select(n => $"`{n}`"))})";
            if (pick.Top is { } top && pick.Best is { } best && top.Name != best.Name)
                line += $"; the best score, `{top.Name}` {StudyFormat.Score(top.HeldInNormalized)} at {StudyFormat.Flops(top.RelativeFlops)}×, is within noise of it, so the cheaper one is picked";
            else if (pick.WithinNoise.Count > 1)
                line += $"; within noise of it: {string.Join(", ", pick.WithinNoise.Where(n => n != pick.Best?.Name).Select(n => $"`{n}`"))}";
            if (pick.JustMissed is { } m)
                line += $"; just over this budget: `{m.Name}` scores {StudyFormat.Score(m.HeldInNormalized)} at {StudyFormat.Flops(m.RelativeFlops)}×";
            if (pick.WorthDeploying == false)
                line += "; **nothing in this budget is worth deploying**: it does not beat the base model beyond noise";
            md.AppendLine(line);
        }
        md.AppendLine();

        md.AppendLine("## Findings").AppendLine();
        foreach (var f in Findings.Compute(r))
        {
            string status = f.Status switch
            {
                FindingStatus.Holds => "holds", FindingStatus.DoesNotHold => "does not hold", FindingStatus.WithinNoise => "within noise", _ => "not tested",
            };
            md.AppendLine($"- **{f.Claim}** — {status}: {f.Evidence}.");
        }
        md.AppendLine();

        var tuned = TunedChoices(r).ToList();
        if (tuned.Count > 0)
        {
            md.AppendLine("## Tuned baselines and fits").AppendLine();
            md.AppendLine("Chosen on validation only, by each task's own metric (docs/study.md); the test split never enters a choice.").AppendLine();
            foreach (var line in tuned) md.AppendLine(line);
            md.AppendLine();
        }

        if (r.Stages is { Count: > 0 } stages)
        {
            md.AppendLine("## Where the time went").AppendLine();
            md.AppendLine("Wall-clock seconds per stage, and this process's CPU seconds (all threads): on a shared machine the wall time " +
                          "mostly measures the other jobs.").AppendLine();
            Row(md, ["stage", "seconds", "share", "CPU s"]);
            Rule(md, 4);
            double total = Math.Max(r.TotalSeconds, 1e-9);
            foreach (var st in stages)
                Row(md, [st.Name, StudyFormat.Seconds(st.Seconds), StudyFormat.Percent(st.Seconds / total), st.CpuSeconds is double c ? StudyFormat.Seconds(c) : "—"]);
            Row(md, ["total", StudyFormat.Seconds(r.TotalSeconds), "100.0%", stages.Any(x => x.CpuSeconds is not null) ? StudyFormat.Seconds(stages.Sum(x => x.CpuSeconds ?? 0)) : "—"]);
            md.AppendLine();
        }

        md.AppendLine("## Plots").AppendLine();
        md.AppendLine($"![Held-in normalised score against relative FLOPs]({StudyPlots.FrontierFile})").AppendLine();
        md.AppendLine($"![Score per task and strategy]({StudyPlots.PerTaskFile})");
        return md.ToString();
    }

    static string TokensPerSecond(StrategyResult s) => s.TokensPerSecondSpread switch
    {
        null => $"{StudyFormat.TokensPerSecond(s.TokensPerSecond)} tokens/s",
        double sp when StudyFormat.Stable(sp) => $"{StudyFormat.TokensPerSecond(s.TokensPerSecond)} tokens/s (spread {StudyFormat.Percent(sp)})",
        double sp => $"{StudyFormat.TokensPerSecond(s.TokensPerSecond)} tokens/s (unstable: spread {StudyFormat.Percent(sp)}, not relied on)",
    };

    /// <summary>How wide the intervals came out, and with how many test examples: what --limit buys.</summary>
    static string IntervalWidths(StudyResults r, BootstrapSettings boot)
    {
        var widths = r.Strategies.Where(s => s.HeldInInterval is { Length: 2 }).Select(s => s.HeldInInterval![1] - s.HeldInInterval[0]).Order().ToList();
        var counts = r.Strategies.Where(s => s.PerExample is not null).SelectMany(s => s.PerExample!.Values.Select(v => v.Length)).Distinct().Order().ToList();
        string n = counts.Count == 0 ? "?" : counts.Count == 1 ? $"{counts[0]}" : $"{counts[0]}–{counts[^1]}";
        string width = widths.Count == 0 ? "" : $" The held-in normalised intervals are {StudyFormat.Score(widths[widths.Count / 2])} wide " +
            $"(median over strategies; {StudyFormat.Score(widths[0])} to {StudyFormat.Score(widths[^1])}).";
        return $"Intervals: {StudyFormat.Percent(boot.Level)} paired bootstrap over the test examples ({boot.Samples} resamples, seed {boot.Seed}; " +
               $"every strategy resampled on the same examples), {n} test examples per task.{width} " +
               "More examples (`--limit`) narrow them about as 1/√n, at proportionally more evaluation time.";
    }

    /// <summary>One line per strategy whose details record a validation grid or a fitted-versus-uniform choice.</summary>
    static IEnumerable<string> TunedChoices(StudyResults r)
    {
        foreach (var s in r.Strategies)
        {
            if (s.Details is not { } d) continue;
            if (d["grid"] is System.Text.Json.Nodes.JsonArray grid && d["chosen"] is System.Text.Json.Nodes.JsonObject chosen)
            {
                var points = grid.Select(p => $"{Parameters(p?["parameters"])} → {Number(p?["validation_score"])}");
                yield return $"- `{s.Name}`: {grid.Count} settings ({string.Join("; ", points)}); chosen {Parameters(chosen)}.";
            }
            else if (d["chosen"] is System.Text.Json.Nodes.JsonValue cv && cv.TryGetValue<string>(out var which) && d["validation"] is System.Text.Json.Nodes.JsonObject v)
            {
                string uniform = Number(v["uniform"]), fitted = Number(v["fitted"]);
                yield return which == "uniform"
                    ? $"- `{s.Name}`: the fit did **not** beat uniform weights on validation ({fitted} fitted vs {uniform} uniform), so uniform weights are served."
                    : $"- `{s.Name}`: the fit beat uniform weights on validation ({fitted} fitted vs {uniform} uniform).";
            }
        }
    }

    static string Parameters(System.Text.Json.Nodes.JsonNode? p) => p is System.Text.Json.Nodes.JsonObject o
        ? string.Join(", ", o.Select(kv => $"{kv.Key} {kv.Value}")) : "?";

    static string Number(System.Text.Json.Nodes.JsonNode? n) =>
        n is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<double>(out var x) ? StudyFormat.Score(x) : "?";

    static void Row(StringBuilder md, IReadOnlyList<string> cells) =>
        md.Append("| ").AppendJoin(" | ", cells.Select(c => c.Replace("|", "\\|"))).AppendLine(" |");

    static void Rule(StringBuilder md, int columns) =>
        md.Append('|').AppendJoin("|", Enumerable.Repeat("---", columns)).AppendLine("|");
}
