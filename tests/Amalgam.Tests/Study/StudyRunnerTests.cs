using Amalgam.Strategies;
using Amalgam.Study;
using Amalgam.Tests.Cli;

namespace Amalgam.Tests.Study;

/// <summary>The study end to end on the bundled suite, in its quick mode: every strategy runs and the outputs agree.</summary>
public class StudyRunnerTests
{
    static readonly string Suite = Path.Combine(TestData.RepoRoot, "suite");

    [Fact]
    public void A_quick_study_on_the_bundled_suite_produces_complete_results_and_outputs()
    {
        using var dir = new TestData.TempDir();
        var results = StudyRunner.Run(StudyOptions.Quick(Suite) with { TestLimit = 3, ThroughputPrompts = 4, ThroughputTokens = 2 });
        StudyOutputs.Write(results, dir.Path);

        Assert.Equal(StudyCatalog.All.Select(e => e.Name), results.Strategies.Select(s => s.Name));
        var reloaded = StudyResultsFile.Load(dir.Path);
        Assert.Equal(results.Strategies.Count, reloaded.Strategies.Count);
        foreach (var file in new[] { ReportWriter.FileName, StudyPlots.FrontierFile, StudyPlots.PerTaskFile })
            Assert.True(new FileInfo(Path.Combine(dir.Path, file)).Length > 0, file);

        var all = results.Tasks.Select(t => t.Name).Order().ToList();
        var heldIn = results.HeldInTasks.Select(t => t.Name).Order().ToList();
        foreach (var s in results.Strategies)
        {
            Assert.Equal(s.Name == "expert-oracle" ? heldIn : all, s.PerTask.Keys.Order().ToList());
            Assert.All(s.PerTask.Values, v => Assert.InRange(v, 0, 1));
            Assert.True(s.TokensPerSecond > 0, s.Name);
            Assert.True(s.StoredParameters >= results.BaseModel.Parameters, s.Name);
            Assert.Contains(s.Family, StrategyFamily.All);
        }
        // Counted costs: references and folded merges cost the base; an output ensemble of all 12 experts over 12×;
        // anything that runs LoRAs unfolded costs more than the base.
        Assert.Equal(1.0, results.Strategy("base").RelativeFlops, 9);
        foreach (var merge in new[] { "merge-uniform", "merge-ties", "merge-fitted-layer-wise", "select-greedy-soup" })
            Assert.Equal(1.0, results.Strategy(merge).RelativeFlops, 9);
        Assert.InRange(results.Strategy("ensemble-uniform").RelativeFlops, 12, 14);
        foreach (var routed in new[] { "route-learned-top1", "route-arrow-top2", "twin-merging", "select-clusters-k2" })
            Assert.True(results.Strategy(routed).RelativeFlops > 1, routed);
        // The oracle is its experts' own score on every held-in task, so its normalised score is exactly 1.
        Assert.Equal(1.0, results.Strategy("expert-oracle").HeldInNormalized, 9);
        Assert.False(results.Strategy("expert-oracle").Deployable);
    }

    [Fact]
    public void Exported_strategies_reproduce_the_study_scores_exactly_when_loaded_without_the_suite()
    {
        using var dir = new TestData.TempDir();
        string export = dir["strategies"];
        var names = new[] { "ensemble-uniform", "merge-ties", "route-learned-top2-outputs", "route-arrow-top1", "twin-merging-groupwise",
            "select-clusters-k2", "select-greedy-routing" };
        var options = StudyOptions.Quick(Suite, names) with { TestLimit = 2, ThroughputPrompts = 2, ThroughputTokens = 1, ExportDir = export };
        var results = StudyRunner.Run(options);
        var suite = Amalgam.Evaluation.Suites.Suite.Load(Suite);
        foreach (var name in names)
        {
            using var loaded = Amalgam.Strategies.Saved.StrategyFolder.Load(Path.Combine(export, name));
            Assert.Equal(name, loaded.Strategy.Name);
            foreach (var t in suite.Tasks)
            {
                double again = Amalgam.Evaluation.SuiteEvaluator.Evaluate(loaded.Predictor, loaded.Pool.Tokenizer, suite, t,
                    Amalgam.Evaluation.Suites.Suite.Test, options.TestLimit).Score;
                Assert.True(results.Strategy(name).PerTask[t.Name] == again, $"{name} on {t.Name}: study {results.Strategy(name).PerTask[t.Name]}, reloaded {again}");
            }
        }
        // Each budget's pick is copied under recommended/ and loads from there too.
        var recommended = Directory.GetDirectories(Path.Combine(export, "recommended"));
        Assert.NotEmpty(recommended);
        foreach (var r in recommended)
        {
            using var loaded = Amalgam.Strategies.Saved.StrategyFolder.Load(r);
            Assert.Contains(loaded.Strategy.Name, names);
        }
    }

    [Fact]
    public void The_study_command_refuses_an_unknown_strategy_in_one_line()
    {
        var r = CliRunner.Run("study", "--suite", Suite, "--strategies", "base,nonsense", "--out", Path.Combine(Path.GetTempPath(), "never-written"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--strategies: unknown strategy or family 'nonsense'", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(Path.GetTempPath(), "never-written")));
    }
}
