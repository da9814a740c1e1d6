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
        ["strategy", "family", "variant", "held-in normalised", "held-out", "relative FLOPs", "tokens/s", "stored parameters", "fit s", "deployable"];

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
                      "Held-out: mean score. Relative FLOPs: FLOPs per example over the base model's (docs/study.md).");
        var skipped = Normalization.SkippedTasks(r.Tasks, r.ExpertScores);
        if (skipped.Count > 0)
            md.AppendLine().AppendLine($"Left out of the normalised score because their expert scores 0: {string.Join(", ", skipped)}.");
        md.AppendLine();

        md.AppendLine("## Summary").AppendLine();
        Row(md, SummaryColumns);
        Rule(md, SummaryColumns.Count);
        foreach (var s in r.Strategies)
            Row(md, [s.Name, s.Family, s.Variant ?? "", StudyFormat.Score(s.HeldInNormalized), StudyFormat.Score(s.HeldOut),
                StudyFormat.Flops(s.RelativeFlops), StudyFormat.TokensPerSecond(s.TokensPerSecond), StudyFormat.Count(s.StoredParameters),
                StudyFormat.Seconds(s.FitSeconds), s.Deployable ? "yes" : "no"]);
        md.AppendLine();

        md.AppendLine("## Scores per task").AppendLine();
        var header = new List<string> { "strategy" };
        header.AddRange(r.Tasks.Select(t => t.HeldOut ? $"{t.Name} (held out)" : t.Name));
        Row(md, header);
        Rule(md, header.Count);
        var expertRow = new List<string> { "*expert on own task*" };
        expertRow.AddRange(r.Tasks.Select(t => r.ExpertScores.TryGetValue(t.Name, out var e) ? StudyFormat.Score(e) : "—"));
        Row(md, expertRow);
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
        md.AppendLine("Best deployable strategy within each budget (held-in normalised score, then held-out, then lower cost):").AppendLine();
        foreach (var pick in Recommendation.Compute(r))
        {
            string line = pick.Best is { } b
                ? $"- **{pick.Budget.Name}**: `{b.Name}` ({b.Family}) — {StudyFormat.Score(b.HeldInNormalized)} held-in normalised, " +
                  $"{StudyFormat.Score(b.HeldOut)} held-out, {StudyFormat.Flops(b.RelativeFlops)}× FLOPs, {StudyFormat.TokensPerSecond(b.TokensPerSecond)} tokens/s, " +
                  $"{StudyFormat.Count(b.StoredParameters)} stored parameters"
                : $"- **{pick.Budget.Name}**: no deployable strategy fits";
            if (pick.BetterNotDeployable.Count > 0)
                line += $" (ranked above it but not deployable: {string.Join(", ", pick.BetterNotDeployable.Select(n => $"`{n}`"))})";
            md.AppendLine(line);
        }
        md.AppendLine();

        md.AppendLine("## Findings").AppendLine();
        foreach (var f in Findings.Compute(r))
        {
            string status = f.Status switch { FindingStatus.Holds => "holds", FindingStatus.DoesNotHold => "does not hold", _ => "not tested" };
            md.AppendLine($"- **{f.Claim}** — {status}: {f.Evidence}.");
        }
        md.AppendLine();

        md.AppendLine("## Plots").AppendLine();
        md.AppendLine($"![Held-in normalised score against relative FLOPs]({StudyPlots.FrontierFile})").AppendLine();
        md.AppendLine($"![Score per task and strategy]({StudyPlots.PerTaskFile})");
        return md.ToString();
    }

    static void Row(StringBuilder md, IReadOnlyList<string> cells) =>
        md.Append("| ").AppendJoin(" | ", cells.Select(c => c.Replace("|", "\\|"))).AppendLine(" |");

    static void Rule(StringBuilder md, int columns) =>
        md.Append('|').AppendJoin("|", Enumerable.Repeat("---", columns)).AppendLine("|");
}
