using Amalgam.Strategies.Saved;
using System.Text.Json.Nodes;
using Amalgam.Ensembling;
using Amalgam.Fitting;
using Amalgam.Predictors;

namespace Amalgam.Strategies;

/// <summary>Output ensembling of all K experts: every prompt runs as K rows, distributions combined at every step.</summary>
public static class EnsembleStrategies
{
    public static Strategy Uniform(StrategyContext c, EnsembleAggregation aggregation = EnsembleAggregation.Probabilities) =>
        Make(c, $"ensemble-uniform{Suffix(aggregation)}", StrategyVariant.Uniform, Enumerable.Repeat(1.0 / c.Suite.Count, c.Suite.Count).ToArray(),
            aggregation, 0, $"all {c.Suite.Count} experts, equal weights, {Describe(aggregation)}", null);

    /// <summary>
    /// Weights fitted on validation (simplex, Adam on softmax logits) for the chosen objective, then held against
    /// uniform weights on the validation selection set by each task's own metric: uniform is inside the search space,
    /// so the fit is kept only when it scores strictly higher there (details.validation, details.chosen).
    /// </summary>
    public static Strategy Fitted(StrategyContext c, FitObjective objective = FitObjective.CrossEntropy,
        EnsembleAggregation aggregation = EnsembleAggregation.Probabilities)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var data = c.Suite.Labelled(c.Options.FitExamplesPerTask);
        var fit = WeightFitting.Ensemble(c.Suite, data, objective, aggregation,
            new SimplexFitOptions(Steps: c.Options.FitSteps * 4, LearningRate: c.Options.FitLearningRate, Seed: c.Options.Seed));
        var uniform = Enumerable.Repeat(1.0 / c.Suite.Count, c.Suite.Count).ToArray();
        double Score(double[] w)
        {
            using var e = new EnsembleStrategy(w, aggregation);
            return c.ValidationScore(e.Predictor(c.Suite.Pool));
        }
        double fittedScore = Score(fit.Vector);
        double uniformScore = c.ValidationScore($"ensemble-uniform{Suffix(aggregation)}", () => new EnsembleStrategy(uniform, aggregation).Predictor(c.Suite.Pool));
        bool keep = fittedScore > uniformScore;
        var details = FitDetails(c, fit, objective);
        details["validation"] = new JsonObject { ["uniform"] = Math.Round(uniformScore, 6), ["fitted"] = Math.Round(fittedScore, 6) };
        details["chosen"] = keep ? "fitted" : "uniform";
        if (!keep) details["fitted_weights"] = Weights(c, fit.Vector);
        string tag = objective == FitObjective.Entropy ? "-entropy" : "";
        return Make(c, $"ensemble-fitted{tag}{Suffix(aggregation)}", StrategyVariant.Fitted, keep ? fit.Vector : uniform, aggregation, clock.Elapsed.TotalSeconds,
            $"all {c.Suite.Count} experts, weights fitted on validation ({ObjectiveName(objective)}), {Describe(aggregation)}" +
            (keep ? "" : "; the fit did not beat uniform weights on validation, so uniform weights are served"),
            details);
    }

    static Strategy Make(StrategyContext c, string name, string variant, double[] weights, EnsembleAggregation aggregation, double fitSeconds,
        string description, JsonObject? details)
    {
        details ??= new JsonObject();
        details["weights"] = Weights(c, weights);
        details["aggregation"] = aggregation.ToString();
        return Strategy.Deployed(new EnsembleStrategy(weights, aggregation), c.Suite.Pool, name, StrategyFamily.Ensemble, variant, description,
            m => m.Ensemble(c.Suite.Count), Costs.Base(c.Suite) + Costs.Experts(c.Suite), fitSeconds, details);
    }

    internal static JsonObject Weights(StrategyContext c, IReadOnlyList<double> weights)
    {
        var o = new JsonObject();
        for (int k = 0; k < weights.Count; k++) o[c.Suite.Names[k]] = Math.Round(weights[k], 6);
        return o;
    }

    internal static JsonObject FitDetails(StrategyContext c, FittedWeights fit, FitObjective objective) => new()
    {
        ["objective"] = ObjectiveName(objective),
        ["examples"] = fit.Examples,
        ["steps"] = fit.LossHistory.Count,
        ["uniform_loss"] = Math.Round(fit.UniformLoss, 6),
        ["fitted_loss"] = Math.Round(fit.FinalLoss, 6),
    };

    internal static string ObjectiveName(FitObjective o) => o == FitObjective.Entropy ? "entropy" : "cross_entropy";
    static string Suffix(EnsembleAggregation a) => a == EnsembleAggregation.LogProbabilities ? "-logprob" : "";
    static string Describe(EnsembleAggregation a) => a == EnsembleAggregation.Probabilities ? "probabilities averaged" : "log-probabilities averaged";
}
