using Amalgam.Predictors;

namespace Amalgam.Strategies;

/// <summary>The references every strategy is read against: the base model alone, and each expert on its own task.</summary>
public static class ReferenceStrategies
{
    public static Strategy Base(StrategyContext c)
    {
        var predictor = new ModelPredictor(c.Suite.Model);
        return new()
        {
            Name = "base",
            Family = StrategyFamily.Reference,
            Description = "the base model alone, no expert",
            PredictorFor = _ => predictor,
            AnswersKey = "base",
            ThroughputKey = Saved.MergedModelStrategy.DenseModelKey(c.Suite.Model),
            Flops = m => m.Base(),
            StoredParameters = Costs.Base(c.Suite),
        };
    }

    /// <summary>Oracle routing: the true task's expert (held-out tasks have none and are not scored). The upper bound.</summary>
    public static Strategy ExpertOracle(StrategyContext c)
    {
        var own = Enumerable.Range(0, c.Suite.Count).Select(k => MixturePredictor.Fixed(c.Suite.Model, OneHot(k, c.Suite.Count))).ToList();
        return new()
        {
            Name = "expert-oracle",
            Family = StrategyFamily.Reference,
            Description = "each held-in task answered by its own expert (oracle routing; the upper bound); held-out tasks have no expert",
            Deployable = false,
            PredictorFor = t => c.Suite.ExpertOf(t) is var k and >= 0 ? own[k] : null,
            AnswersKey = "expert-oracle",
            Flops = m => m.Loras(1),
            StoredParameters = Costs.Base(c.Suite) + Costs.Experts(c.Suite),
        };
    }

    /// <summary>Weight 1 on expert k, 0 on the others.</summary>
    public static double[] OneHot(int k, int experts)
    {
        var w = new double[experts];
        w[k] = 1;
        return w;
    }
}
