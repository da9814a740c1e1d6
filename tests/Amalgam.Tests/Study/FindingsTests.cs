using Amalgam.Strategies;
using Amalgam.Study;

namespace Amalgam.Tests.Study;

public class FindingsTests
{
    static Finding Get(IReadOnlyList<Finding> f, string id) => f.Single(x => x.Id == id);

    [Fact]
    public void EveryClaimHoldsOnTheFixture()
    {
        var f = Findings.Compute(StudyFixture.Results());
        Assert.Equal(4, f.Count);
        var ens = Get(f, Findings.FittedEnsembling);
        Assert.Equal(FindingStatus.Holds, ens.Status);
        // 0.716667 vs 0.608333
        Assert.Contains("'ensemble-fitted' 0.717 vs best uniform 'ensemble-uniform' 0.608", ens.Evidence);
        Assert.Contains("+0.108", ens.Evidence);
        var merge = Get(f, Findings.FittedMerging);
        Assert.Equal(FindingStatus.Holds, merge.Status);
        Assert.Contains("'merge-fitted' 0.521 vs best uniform 'merge-uniform' 0.433", merge.Evidence);
        var route = Get(f, Findings.RoutingBeatsFusion);
        Assert.Equal(FindingStatus.Holds, route.Status);
        Assert.Contains("best route 'router-mlp' 0.892 vs best ensemble 'ensemble-fitted' 0.717 (+0.175), best merge 'merge-fitted' 0.521 (+0.371)", route.Evidence);
        var select = Get(f, Findings.SelectionKeepsGain);
        Assert.Equal(FindingStatus.Holds, select.Status);
        // (0.783333 − 0.520833) / (0.891667 − 0.520833) = 0.2625 / 0.370833 = 70.8 %; 1.0 / 1.5 = 66.7 %
        Assert.Contains("keeps 70.8% of routing's gain", select.Evidence);
        Assert.Contains("at 66.7% of routing's FLOPs (1.000× vs 1.500×)", select.Evidence);
    }

    [Fact]
    public void ClaimsThatFailSayDoesNotHold()
    {
        var s = StudyFixture.Strategies();
        s[3] = StudyFixture.Strategy("ensemble-fitted", StrategyFamily.Ensemble, StrategyVariant.Fitted, 3.0, 0.6, 0.5, 0.3, 0.3, 0.3); // equal: not better
        s[6] = StudyFixture.Strategy("router-mlp", StrategyFamily.Route, "learned", 1.5, 0.65, 0.5, 0.3, 0.3, 0.3);                     // 0.625
        s[7] = StudyFixture.Strategy("select-greedy", StrategyFamily.Select, StrategyVariant.Greedy, 1.0, 0.5, 0.45, 0.27, 0.3, 0.3);   // 0.534167
        var f = Findings.Compute(StudyFixture.Results(s));
        Assert.Equal(FindingStatus.DoesNotHold, Get(f, Findings.FittedEnsembling).Status);
        Assert.Contains("(+0.000)", Get(f, Findings.FittedEnsembling).Evidence);
        // the router beats the best ensemble (0.608) and merge (0.521) still
        Assert.Equal(FindingStatus.Holds, Get(f, Findings.RoutingBeatsFusion).Status);
        // (0.534167 − 0.520833) / (0.625 − 0.520833) = 12.8 %
        var select = Get(f, Findings.SelectionKeepsGain);
        Assert.Equal(FindingStatus.DoesNotHold, select.Status);
        Assert.Contains("keeps 12.8%", select.Evidence);
    }

    [Fact]
    public void MissingStrategiesAreNotTested()
    {
        var s = StudyFixture.Strategies().Where(x => x.Family is StrategyFamily.Reference or StrategyFamily.Merge).ToList();
        s.RemoveAll(x => x.Variant == StrategyVariant.Uniform);
        var f = Findings.Compute(StudyFixture.Results(s));
        Assert.All(f, x => Assert.Equal(FindingStatus.NotTested, x.Status));
        Assert.Contains("no deployable ensemble strategy tagged 'fitted'", Get(f, Findings.FittedEnsembling).Evidence);
        Assert.Contains("no deployable merge strategy tagged 'uniform'", Get(f, Findings.FittedMerging).Evidence);
        Assert.Contains("no deployable routing strategy", Get(f, Findings.RoutingBeatsFusion).Evidence);
    }

    [Fact]
    public void RoutingWithoutGainOverMergingLeavesNothingToKeep()
    {
        var s = StudyFixture.Strategies();
        s[6] = StudyFixture.Strategy("router-mlp", StrategyFamily.Route, "learned", 1.5, 0.5, 0.4, 0.25, 0.3, 0.3); // 0.5 < merge 0.521
        var f = Findings.Compute(StudyFixture.Results(s));
        Assert.Equal(FindingStatus.DoesNotHold, Get(f, Findings.RoutingBeatsFusion).Status);
        Assert.Equal(FindingStatus.NotTested, Get(f, Findings.SelectionKeepsGain).Status);
        Assert.Contains("no gain to keep", Get(f, Findings.SelectionKeepsGain).Evidence);
    }

    [Fact]
    public void NonDeployableStrategiesTakeNoPart()
    {
        var s = StudyFixture.Strategies();
        // an oracle router that knows the task: better than everything, but not deployable
        s.Add(StudyFixture.Strategy("router-oracle", StrategyFamily.Route, "oracle", 1.0, 1.0, 0.8, 0.5, null, null, deployable: false));
        var route = Get(Findings.Compute(StudyFixture.Results(s)), Findings.RoutingBeatsFusion);
        Assert.Contains("best route 'router-mlp'", route.Evidence);
    }
}
