using Amalgam.Strategies;
using Amalgam.Study;

namespace Amalgam.Tests.Study;

public class RecommendationTests
{
    [Fact]
    public void BestDeployableStrategyPerDefaultBudget()
    {
        var picks = Recommendation.Compute(StudyFixture.Results());
        Assert.Equal(3, picks.Count);
        // ≤ 1×: base 0.142, merges 0.433 / 0.521, greedy selection 0.783; the oracle (1.0) is not deployable.
        Assert.Equal("select-greedy", picks[0].Best!.Name);
        Assert.Equal(["expert-oracle"], picks[0].BetterNotDeployable);
        // ≤ 2×: the router (1.5×, 0.892) joins.
        Assert.Equal("router-mlp", picks[1].Best!.Name);
        // any: the ensembles (3×) score less than the router.
        Assert.Equal("router-mlp", picks[2].Best!.Name);
    }

    [Fact]
    public void TiesBreakOnHeldOutThenCostThenName()
    {
        var s = new[]
        {
            StudyFixture.Strategy("z-cheap", StrategyFamily.Merge, null, 1.0, 0.5, 0.4, 0.25, 0.3, 0.3),
            StudyFixture.Strategy("y-better-held-out", StrategyFamily.Merge, null, 1.0, 0.5, 0.4, 0.25, 0.4, 0.4),
            StudyFixture.Strategy("x-costly", StrategyFamily.Route, null, 1.5, 0.5, 0.4, 0.25, 0.4, 0.4),
            StudyFixture.Strategy("b-same", StrategyFamily.Merge, null, 1.0, 0.5, 0.4, 0.25, 0.3, 0.3),
        };
        Assert.Equal(["y-better-held-out", "x-costly", "b-same", "z-cheap"], Recommendation.Rank(s).Select(x => x.Name));
    }

    [Fact]
    public void HeldOutMissingRanksBelowAnyHeldOutScore()
    {
        var s = new[]
        {
            StudyFixture.Strategy("none", StrategyFamily.Merge, null, 1.0, 0.5, 0.4, 0.25, null, null),
            StudyFixture.Strategy("zero", StrategyFamily.Merge, null, 1.0, 0.5, 0.4, 0.25, 0.0, 0.0),
        };
        Assert.Equal(["zero", "none"], Recommendation.Rank(s).Select(x => x.Name));
    }

    [Fact]
    public void BudgetToleranceIsForRoundingOnly()
    {
        var budget = new Budget("base", 1.0);
        Assert.True(budget.Allows(1.0 + 1e-12));
        Assert.False(budget.Allows(1.001));
        var s = new[]
        {
            StudyFixture.Strategy("merge", StrategyFamily.Merge, null, 1.0, 0.5, 0.4, 0.25, 0.3, 0.3),
            StudyFixture.Strategy("arrow", StrategyFamily.Route, null, 1.01, 0.9, 0.8, 0.5, 0.3, 0.3),
        };
        Assert.Equal("merge", Recommendation.Pick(s, budget).Best!.Name);
        Assert.Equal("arrow", Recommendation.Pick(s, new Budget("1.05", 1.05)).Best!.Name);
    }

    [Fact]
    public void NoStrategyFitsABudget()
    {
        var s = new[] { StudyFixture.Strategy("ensemble", StrategyFamily.Ensemble, null, 3.0, 0.5, 0.4, 0.25, 0.3, 0.3) };
        var pick = Recommendation.Pick(s, new Budget("base", 1.0));
        Assert.Null(pick.Best);
        Assert.Empty(pick.BetterNotDeployable);
    }
}
