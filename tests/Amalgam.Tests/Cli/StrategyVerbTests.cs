using Amalgam.Routing;
using Amalgam.Study;

namespace Amalgam.Tests.Cli;

/// <summary>The strategy verbs run on the bundled suite and write results in the study's schema.</summary>
public class StrategyVerbTests
{
    static readonly string Suite = Path.Combine(TestData.RepoRoot, "suite");

    [Fact]
    public void Route_trains_saves_and_scores_a_router()
    {
        using var dir = new TestData.TempDir();
        var r = CliRunner.Run("route", "--suite", Suite, "--quick", "--router", "centroid", "--top-k", "1", "--save-routers", dir["routers"], "--out", dir["route.json"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var results = StudyResultsFile.Load(dir["route.json"]);
        Assert.Equal(["route-centroid-top1"], results.Strategies.Select(s => s.Name));
        Assert.Equal(results.Tasks.Count, results.Strategies[0].PerTask.Count);
        var router = RouterFiles.Load(Path.Combine(dir["routers"], "centroid"));
        Assert.Equal(12, router.Experts.Count);
        (router as IDisposable)?.Dispose();
    }

    [Fact]
    public void Fit_writes_a_recipe_that_merge_accepts()
    {
        using var dir = new TestData.TempDir();
        var r = CliRunner.Run("fit", "--suite", Suite, "--quick", "--target", "merge-task-wise", "--recipes", dir["recipes"], "--out", dir["fit.json"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var recipe = Path.Combine(dir["recipes"], "merge-fitted-task-wise.yaml");
        Assert.True(File.Exists(recipe));
        var merge = CliRunner.Run("merge", recipe, dir["merged"]);
        Assert.True(merge.ExitCode == 0, merge.Stderr);
        Assert.True(File.Exists(Path.Combine(dir["merged"], "config.json")));
    }

    [Theory]
    [InlineData("route", "--aggregation", "sideways", "--aggregation: 'sideways' is not one of parameters, outputs")]
    [InlineData("ensemble", "--weights", "heavy", "--weights: 'heavy' is not one of uniform, fitted")]
    [InlineData("select", "--method", "vote", "--method: 'vote' is not one of clusters, greedy-soup, greedy-routing")]
    [InlineData("fit", "--target", "everything", "--target: 'everything' is not one of ensemble, merge-task-wise, merge-layer-wise, lorahub")]
    public void Bad_choices_are_refused_in_one_line(string verb, string option, string value, string message)
    {
        var r = CliRunner.Run(verb, "--suite", Suite, option, value, "--out", Path.Combine(Path.GetTempPath(), "never.json"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }
}
