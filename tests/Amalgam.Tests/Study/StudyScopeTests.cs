using Amalgam.Study;
using Amalgam.Tests.Cli;

namespace Amalgam.Tests.Study;

/// <summary>Any user's suite: two experts, choices that cannot apply skipped with a reason, --skip, --budget.</summary>
public class StudyScopeTests
{
    static readonly string Bundled = Path.Combine(TestData.RepoRoot, "suite");

    /// <summary>A suite.yaml beside the bundled one's files: its first two held-in tasks (with their experts) and its first held-out task.</summary>
    static string TwoExpertSuite(TestData.TempDir dir)
    {
        var suite = Amalgam.Evaluation.Suites.Suite.Load(Bundled);
        var tasks = suite.HeldIn.Take(2).Concat(suite.Tasks.Where(t => t.HeldOut).Take(1)).ToList();
        string Rel(string p) => Path.GetRelativePath(dir.Path, p).Replace('\\', '/');
        var yaml = new System.Text.StringBuilder();
        yaml.AppendLine("name: \"two-experts\"").AppendLine($"base: \"{Rel(suite.BasePath)}\"").AppendLine($"prompt_format: {System.Text.Json.JsonSerializer.Serialize(suite.PromptFormat)}").AppendLine("tasks:");
        foreach (var t in tasks)
        {
            yaml.AppendLine($"- name: \"{t.Name}\"").AppendLine($"  family: \"{t.Family}\"").AppendLine($"  held_out: {(t.HeldOut ? "true" : "false")}")
                .AppendLine($"  metric: \"{t.Metric}\"").AppendLine($"  data: \"{Rel(t.DataPath)}\"");
            if (t.ExpertPath is { } e) yaml.AppendLine($"  expert: \"{Rel(e)}\"");
        }
        File.WriteAllText(dir["suite.yaml"], yaml.ToString());
        return dir.Path;
    }

    [Fact]
    public void A_two_expert_suite_runs_and_skips_what_cannot_apply_with_a_line_in_the_report()
    {
        using var dir = new TestData.TempDir();
        string suite = TwoExpertSuite(dir);
        var options = StudyOptions.Quick(suite, ["base", "merge-ties", "route-learned-top2-params", "select-clusters-k2", "select-clusters-k4", "select-greedy-soup"])
            with { TestLimit = 2, ThroughputPrompts = 2, ThroughputTokens = 1, BootstrapSamples = 50 };
        var r = StudyRunner.Run(options);
        Assert.Equal(["base", "merge-ties", "route-learned-top2-params", "select-greedy-soup"], r.Strategies.Select(s => s.Name));
        Assert.Equal(["select-clusters-k2", "select-clusters-k4"], r.Skipped!.Select(s => s.Name));
        Assert.Contains("k = 2 clusters need more than 2 experts (the suite has 2)", r.Skipped![0].Reason);
        StudyOutputs.Write(r, dir["out"]);
        string md = File.ReadAllText(Path.Combine(dir["out"], ReportWriter.FileName));
        Assert.Contains("- `select-clusters-k2`: k = 2 clusters need more than 2 experts", md);
        // The new fields are there and consistent (Load recomputes the intervals).
        var back = StudyResultsFile.Load(dir["out"]);
        Assert.All(back.Strategies, s => Assert.NotNull(s.HeldInInterval));
        Assert.Equal(50, back.Bootstrap!.Samples);
        Assert.Contains(back.Stages!, st => st.Name == "fit merge");
        var ties = back.Strategy("merge-ties").Details!;
        Assert.Equal(5, ties["grid"]!.AsArray().Count);
        Assert.Equal(0.2, ties["chosen"]!["density"]!.GetValue<double>());
        Assert.Contains("## Where the time went", md);
    }

    [Fact]
    public void Skip_removes_names_and_families_and_the_budget_stops_adding_strategies()
    {
        using var dir = new TestData.TempDir();
        string suite = TwoExpertSuite(dir);
        var options = StudyOptions.Quick(suite, ["reference", "merge-uniform", "route-learned-top1"])
            with { TestLimit = 1, ThroughputPrompts = 1, ThroughputTokens = 1, BootstrapSamples = 0, Skip = ["expert-oracle"], Budget = TimeSpan.FromMilliseconds(1) };
        var r = StudyRunner.Run(options);
        Assert.Equal(["base"], r.Strategies.Select(s => s.Name)); // the first always runs
        Assert.Equal(["expert-oracle", "merge-uniform", "route-learned-top1"], r.Skipped!.Select(s => s.Name));
        Assert.Equal("--skip", r.Skipped![0].Reason);
        Assert.StartsWith("--budget 0.001s spent", r.Skipped![1].Reason);
        Assert.Null(r.Bootstrap);
        Assert.Null(r.Strategies[0].HeldInInterval);
        StudyResultsFile.Validate(r);
    }

    [Theory]
    [InlineData("--skip", "merge,nonsense", "--skip: unknown strategy or family 'nonsense'")]
    [InlineData("--budget", "5 minutes", "--budget: '5 minutes' is not a positive duration")]
    [InlineData("--bootstrap", "1", "--bootstrap: must be 0 (no intervals) or at least 2, got 1")]
    public void Bad_options_are_refused_in_one_line_before_anything_loads(string option, string value, string expected)
    {
        string never = Path.Combine(Path.GetTempPath(), "never-written-" + Guid.NewGuid().ToString("N"));
        var r = CliRunner.Run("study", "--suite", Bundled, option, value, "--out", never);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(expected, r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(never));
    }

    [Theory]
    [InlineData("300", 300)]
    [InlineData("90s", 90)]
    [InlineData("5m", 300)]
    [InlineData("1h30m", 5400)]
    [InlineData("2m30s", 150)]
    public void Durations_parse(string text, double seconds) => Assert.Equal(seconds, StudyFormat.ParseDuration(text)!.Value.TotalSeconds);

    [Fact]
    public void A_one_expert_suite_is_refused_in_one_line()
    {
        using var dir = new TestData.TempDir();
        string suite = TwoExpertSuite(dir);
        var yaml = File.ReadAllLines(dir["suite.yaml"]).ToList();
        int second = yaml.FindIndex(4, l => l.StartsWith("- name:"));
        int third = yaml.FindIndex(second + 1, l => l.StartsWith("- name:"));
        yaml.RemoveRange(second, third - second);
        File.WriteAllLines(dir["suite.yaml"], yaml);
        var e = Assert.Throws<InvalidDataException>(() => StudyRunner.Run(StudyOptions.Quick(suite, ["base"]) with { TestLimit = 1 }));
        Assert.Contains("needs at least 2 (this suite has 1)", e.Message);
    }
}
