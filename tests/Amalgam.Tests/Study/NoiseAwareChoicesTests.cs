using Amalgam.Strategies;
using Amalgam.Study;

namespace Amalgam.Tests.Study;

/// <summary>Findings and recommendations with a bootstrap: within noise, the cheaper pick, the budget edge, nothing worth deploying.</summary>
public class NoiseAwareChoicesTests
{
    const int N = 40;
    static readonly List<StudyTask> Tasks =
    [
        new() { Name = "a", Family = "f", HeldOut = false, Metric = "exact_match" },
        new() { Name = "b", Family = "f", HeldOut = false, Metric = "exact_match" },
        new() { Name = "c", Family = "g", HeldOut = false, Metric = "exact_match" },
    ];
    static readonly Dictionary<string, double> Experts = new() { ["a"] = 1.0, ["b"] = 1.0, ["c"] = 1.0 };

    /// <summary>N examples per task with exactly round(p·N) right; <paramref name="shift"/> moves which ones (same shift = same examples).</summary>
    static StrategyResult S(string name, string family, string? variant, double flops, double p, int shift, long stored = 1000)
    {
        double[] Examples(int task) => Enumerable.Range(0, N).Select(i => (i * 17 + shift + 5 * task) % N < Math.Round(p * N) ? 1.0 : 0.0).ToArray();
        var perExample = Tasks.Select((t, k) => (t.Name, Scores: Examples(k))).ToDictionary(x => x.Name, x => x.Scores);
        return Normalization.Fill(new StrategyResult
        {
            Name = name, Family = family, Variant = variant, PerTask = perExample.ToDictionary(kv => kv.Key, kv => kv.Value.Average()),
            PerExample = perExample, RelativeFlops = flops, TokensPerSecond = 100, StoredParameters = stored,
        }, Tasks, Experts, BaseScores);
    }

    static readonly Dictionary<string, double> BaseScores = new() { ["a"] = 0.3, ["b"] = 0.3, ["c"] = 0.3 };

    static StudyResults Study(params StrategyResult[] s) => StudyBootstrap.WithIntervals(
        StudyFixture.Results() with { Tasks = Tasks, ExpertScores = Experts, BaseScores = BaseScores, Strategies = [.. s] },
        new BootstrapSettings { Samples = 1000, Seed = 0, Level = 0.95 });

    [Fact]
    public void ASmallDifferenceOnOtherExamplesIsWithinNoiseAndALargeOneHolds()
    {
        var r = Study(
            S("base", StrategyFamily.Reference, null, 1, 0.3, 0),
            S("merge-uniform", StrategyFamily.Merge, StrategyVariant.Uniform, 1, 0.50, 0),
            S("merge-fitted", StrategyFamily.Merge, StrategyVariant.Fitted, 1, 0.55, 11),
            S("route", StrategyFamily.Route, null, 1.5, 0.90, 3));
        var f = Findings.Compute(r);
        var merging = f.Single(x => x.Id == Findings.FittedMerging);
        Assert.Equal(FindingStatus.WithinNoise, merging.Status);
        Assert.Contains("(+0.050) [95.0% interval of the difference [-", merging.Evidence);
        Assert.Contains("gap closed", merging.Evidence);
        Assert.Equal(FindingStatus.Holds, f.Single(x => x.Id == Findings.RoutingBeatsFusion).Status);
        Assert.Contains("within noise", ReportWriter.Render(r));
    }

    [Fact]
    public void TheSameSmallDifferenceOnNestedExamplesHolds()
    {
        // Same shift: the fitted merge gets right every example the uniform one does, plus two per task. Pairing sees it.
        var r = Study(
            S("merge-uniform", StrategyFamily.Merge, StrategyVariant.Uniform, 1, 0.50, 0),
            S("merge-fitted", StrategyFamily.Merge, StrategyVariant.Fitted, 1, 0.55, 0));
        Assert.Equal(FindingStatus.Holds, Findings.Compute(r).Single(x => x.Id == Findings.FittedMerging).Status);
    }

    [Fact]
    public void IdenticalScoresDoNotHold()
    {
        var r = Study(
            S("merge-uniform", StrategyFamily.Merge, StrategyVariant.Uniform, 1, 0.50, 0),
            S("merge-fitted", StrategyFamily.Merge, StrategyVariant.Fitted, 1, 0.50, 0));
        Assert.Equal(FindingStatus.DoesNotHold, Findings.Compute(r).Single(x => x.Id == Findings.FittedMerging).Status);
    }

    [Fact]
    public void TheCheaperStrategyWithinNoiseIsPickedAndTheBudgetEdgeIsNamed()
    {
        var r = Study(
            S("base", StrategyFamily.Reference, null, 1, 0.3, 0, stored: 10),
            S("merge", StrategyFamily.Merge, null, 1, 0.60, 0),
            S("route", StrategyFamily.Route, null, 1.5, 0.625, 13),
            S("ensemble", StrategyFamily.Ensemble, null, 2.006, 0.95, 7));
        var picks = Recommendation.Compute(r);
        var within2 = picks[1];
        Assert.Equal("route", within2.Top!.Name);
        Assert.Equal("merge", within2.Best!.Name);
        Assert.Equal(["route", "merge"], within2.WithinNoise);
        Assert.Equal("ensemble", within2.JustMissed!.Name);
        Assert.True(within2.WorthDeploying);
        Assert.Equal("merge", picks[0].Best!.Name);
        Assert.Null(picks[0].JustMissed); // the ensemble is far over 1×
        Assert.Equal("ensemble", picks[2].Best!.Name);
        string md = ReportWriter.Render(r);
        Assert.Contains("the best score, `route` 0.625 at 1.500×, is within noise of it, so the cheaper one is picked", md);
        Assert.Contains("just over this budget: `ensemble` scores 0.950 at 2.006×", md);
        Assert.Contains("95.0% paired bootstrap over the test examples (1000 resamples, seed 0", md);
        Assert.Contains(", 40 test examples per task. The held-in normalised intervals are ", md);
    }

    [Fact]
    public void WhenNothingBeatsTheBaseBeyondNoiseTheReportSaysSo()
    {
        var r = Study(
            S("base", StrategyFamily.Reference, null, 1, 0.3, 0, stored: 10),
            S("merge", StrategyFamily.Merge, null, 1, 0.325, 9));
        var pick = Recommendation.Compute(r)[0];
        Assert.Equal("merge", pick.Top!.Name);
        Assert.Equal("base", pick.Best!.Name); // within noise and stores less
        Assert.False(pick.WorthDeploying);
        Assert.Contains("**nothing in this budget is worth deploying**", ReportWriter.Render(r));
    }

    [Fact]
    public void GapClosedIsTheMeanShareOfTheBaseToExpertGapAndSkipsTasksWhereTheExpertDoesNotBeatTheBase()
    {
        var experts = new Dictionary<string, double> { ["a"] = 1.0, ["b"] = 0.8, ["c"] = 0.5 };
        var bases = new Dictionary<string, double> { ["a"] = 0.2, ["b"] = 0.4, ["c"] = 0.5 };
        var per = new Dictionary<string, double> { ["a"] = 0.6, ["b"] = 0.5, ["c"] = 0.9 };
        // a: (0.6 − 0.2) / 0.8 = 0.5; b: (0.5 − 0.4) / 0.4 = 0.25; c skipped (expert = base): mean 0.375.
        Assert.Equal(0.375, Normalization.GapClosed(per, Tasks, experts, bases)!.Value, 12);
        Assert.Equal(["c"], Normalization.GapSkippedTasks(Tasks, experts, bases));
        Assert.Null(Normalization.GapClosed(per, Tasks, experts, new Dictionary<string, double> { ["a"] = 1, ["b"] = 1, ["c"] = 1 }));
    }
}
