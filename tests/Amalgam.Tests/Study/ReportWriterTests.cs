using Amalgam.Strategies;
using System.Globalization;
using Amalgam.Study;

namespace Amalgam.Tests.Study;

public class ReportWriterTests
{
    /// <summary>The summary table of report.md as rows of column -> cell.</summary>
    static List<Dictionary<string, string>> SummaryTable(string markdown)
    {
        var lines = markdown.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        int header = lines.FindIndex(l => l.StartsWith("| strategy | family |"));
        Assert.True(header >= 0, "no summary table");
        static string[] Cells(string line) => line.Trim().Trim('|').Split(" | ").Select(c => c.Trim()).ToArray();
        var columns = Cells(lines[header]);
        Assert.Equal(ReportWriter.SummaryColumns, columns);
        return lines.Skip(header + 2).TakeWhile(l => l.StartsWith('|'))
            .Select(l => columns.Zip(Cells(l)).ToDictionary(p => p.First, p => p.Second)).ToList();
    }

    static double Num(string cell) => double.Parse(cell, NumberStyles.Float | NumberStyles.AllowThousands, CultureInfo.InvariantCulture);

    [Fact]
    public void SummaryTableAgreesWithResultsJson()
    {
        using var dir = new TestData.TempDir();
        StudyOutputs.Write(StudyFixture.Results(), dir.Path);
        var results = StudyResultsFile.Load(dir.Path);
        var rows = SummaryTable(File.ReadAllText(dir["report.md"]));
        Assert.Equal(results.Strategies.Select(s => s.Name), rows.Select(r => r["strategy"]));
        foreach (var (s, row) in results.Strategies.Zip(rows))
        {
            Assert.Equal(s.Family, row["family"]);
            Assert.Equal(s.Variant ?? "", row["variant"]);
            Assert.Equal(s.HeldInNormalized, Num(row["held-in normalised"]), 0.0005 + 1e-9);
            if (s.HeldOut is double h) Assert.Equal(h, Num(row["held-out"]), 0.0005 + 1e-9);
            else Assert.Equal("—", row["held-out"]);
            Assert.Equal(s.RelativeFlops, Num(row["relative FLOPs"]), 0.0005 + 1e-9);
            Assert.Equal(s.TokensPerSecond, Num(row["tokens/s"]), 0.05 + 1e-9);
            Assert.Equal(s.StoredParameters, (long)Num(row["stored parameters"]));
            Assert.Equal(s.FitSeconds, Num(row["fit s"]), 0.05 + 1e-9);
            Assert.Equal(s.Deployable ? "yes" : "no", row["deployable"]);
        }
    }

    [Fact]
    public void ReportHasEverySection()
    {
        using var dir = new TestData.TempDir();
        string md = File.ReadAllText(ReportWriter.Write(StudyFixture.Results(), dir.Path));
        foreach (var heading in new[] { "# Study: hand-made", "## Summary", "## Scores per task", "## Pareto frontier", "## Recommendation", "## Findings", "## Plots" })
            Assert.Contains(heading, md);
        Assert.Contains("| strategy | a | b | c | x (held out) | y (held out) |", md);
        Assert.Contains("| *expert on own task* | 1.000 | 0.800 | 0.500 | — | — |", md);
        Assert.Contains("| router-mlp | 0.900 | 0.700 | 0.450 | 0.300 | 0.300 |", md);
        Assert.Contains("- `select-greedy` (select): 0.783 at 1.000× base FLOPs\n- `router-mlp` (route): 0.892 at 1.500× base FLOPs\n", md);
        Assert.Contains("- **base cost (≤ 1×)**: `select-greedy` (select) — 0.783 held-in normalised", md);
        Assert.Contains("(ranked above it but not deployable: `expert-oracle`)", md);
        Assert.Contains("- **≤ 2× base**: `router-mlp` (route)", md);
        Assert.Contains("— holds: best fitted 'ensemble-fitted' 0.717", md);
        Assert.Contains("![Held-in normalised score against relative FLOPs](frontier.png)", md);
        Assert.Contains("![Score per task and strategy](per_task.png)", md);
        Assert.DoesNotContain("Left out of the normalised score", md);
    }

    [Fact]
    public void SkippedTasksAreNamed()
    {
        var experts = new Dictionary<string, double> { ["a"] = 1.0, ["b"] = 0.8, ["c"] = 0.0 };
        var results = StudyFixture.Results() with
        {
            ExpertScores = experts,
            Strategies = [StudyFixture.Strategy("base", StrategyFamily.Reference, null, 1.0, 0.1, 0.1, 0.1, 0.2, 0.2, experts: experts)],
        };
        StudyResultsFile.Validate(results);
        Assert.Contains("Left out of the normalised score because their expert scores 0: c.", ReportWriter.Render(results));
    }
}
