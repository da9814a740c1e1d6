using System.Text.Json.Nodes;
using Amalgam.Ensembling;
using Amalgam.Predictors;

namespace Amalgam.Strategies.Saved;

/// <summary>Output ensembling of the pool's experts with fixed weights (uniform or fitted): every prompt runs as K rows.</summary>
public sealed class EnsembleStrategy(IReadOnlyList<double> weights, EnsembleAggregation aggregation) : DeployableStrategy
{
    public override string Kind => StrategyKinds.Ensemble;
    public IReadOnlyList<double> Weights => weights;
    public EnsembleAggregation Aggregation => aggregation;

    public override IPredictor Predictor(ExpertPool pool) => EnsemblePredictor.Weighted(pool.Model, weights, aggregation);

    public override string? AnswersKey =>
        $"ensemble {aggregation} {string.Join(",", weights.Select(w => w.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}";

    /// <summary>Every weighting runs all K experts as K rows per prompt: the same ops whatever the weights.</summary>
    public override string? ThroughputKey => $"ensemble {aggregation} {weights.Count}";

    public override JsonObject Save(string dir, ExpertPool pool) => new()
    {
        ["weights"] = SavedParameters.PerExpert(pool.Names, weights),
        ["aggregation"] = aggregation.ToString().ToLowerInvariant(),
    };

    public static EnsembleStrategy Load(SavedParameters p, ExpertPool pool) =>
        new(p.PerExpert("weights", pool.Names), p.Enum<EnsembleAggregation>("aggregation"));
}
