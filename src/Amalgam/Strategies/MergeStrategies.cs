using Amalgam.Strategies.Saved;
using System.Text.Json.Nodes;
using Amalgam.Fitting;
using Amalgam.Models;
using Amalgam.Predictors;

namespace Amalgam.Strategies;

/// <summary>
/// Weight-space merges of all K experts into one model through the merge executor (mergekit's semantics, in the
/// experts' exact dense update space), served folded at the base model's cost. Each strategy's details carry the
/// recipe, so `amalgam merge` can write the same model.
/// </summary>
public static class MergeStrategies
{
    public static Strategy Uniform(StrategyContext c) =>
        Merge(c, "merge-uniform", StrategyVariant.Uniform, "linear", null, null, "mean of the experts' updates (mergekit linear, equal weights)");

    public static Strategy TaskArithmetic(StrategyContext c) =>
        Merge(c, "merge-task-arithmetic", null, "task_arithmetic", new() { ["lambda"] = c.Options.TaskArithmeticLambda }, null,
            $"task arithmetic: θ0 + λ·Σ ΔWₖ, λ = {c.Options.TaskArithmeticLambda}");

    public static Strategy Ties(StrategyContext c) =>
        Merge(c, "merge-ties", null, "ties", new() { ["density"] = c.Options.Density }, null,
            $"TIES: top-{c.Options.Density:P0} magnitude trim, sign election, disjoint mean");

    public static Strategy DareTies(StrategyContext c) =>
        Merge(c, "merge-dare-ties", null, "dare_ties", new() { ["density"] = c.Options.Density }, null,
            $"DARE (keep {c.Options.Density:P0}, rescale) then TIES sign election; seed {c.Options.Seed}");

    /// <summary>Merge coefficients fitted on validation through the factored mixture, then merged (linear) with them.</summary>
    public static Strategy Fitted(StrategyContext c, bool layerWise, FitObjective objective = FitObjective.CrossEntropy)
    {
        var data = c.Suite.Labelled(c.Options.MergeFitExamplesPerTask);
        var fit = WeightFitting.Merge(c.Suite, data, layerWise, objective,
            new SimplexFitOptions(Steps: c.Options.FitSteps, LearningRate: c.Options.FitLearningRate, Seed: c.Options.Seed));
        // Row l of a layer-wise fit is layer l's weights: per expert, a gradient over depth with one value per layer.
        var weights = Enumerable.Range(0, c.Suite.Count).Select(k => (IReadOnlyList<double>)fit.Weights.Select(row => row[k]).ToList()).ToList();
        var details = EnsembleStrategies.FitDetails(c, fit, objective);
        details["weights"] = layerWise
            ? new JsonObject(fit.Weights.Select((row, l) => KeyValuePair.Create($"layer_{l}", (JsonNode?)EnsembleStrategies.Weights(c, row))))
            : EnsembleStrategies.Weights(c, fit.Vector);
        string scope = layerWise ? "layer-wise" : "task-wise";
        string tag = objective == FitObjective.Entropy ? "-entropy" : "";
        return Merge(c, $"merge-fitted-{scope}{tag}", StrategyVariant.Fitted, "linear", null, weights,
            $"{scope} merge coefficients on the simplex fitted on validation ({EnsembleStrategies.ObjectiveName(objective)}; AdaMerging-style)",
            fit.Seconds, details);
    }

    /// <summary>
    /// LoraHub: for every task, weights in [−1.5, 1.5] searched gradient-free on a handful of that task's validation
    /// examples (few-shot composition, held-out tasks included); one merge per task, so it needs the task's identity
    /// and is not one deployable system.
    /// </summary>
    public static Strategy LoraHub(StrategyContext c, int examples = 5, LoraHubOptions? options = null)
    {
        options ??= new LoraHubOptions(Seed: c.Options.Seed);
        var fits = new Dictionary<string, FittedWeights>();
        var predictors = new Dictionary<string, IPredictor>();
        foreach (var t in c.Suite.Suite.Tasks)
        {
            var few = c.Suite.Suite.LoadSplit(t, Evaluation.Suites.Suite.Validation).Take(examples).ToList();
            var (fit, _) = WeightFitting.LoraHub(c.Suite, few, options);
            fits[t.Name] = fit;
            predictors[t.Name] = MixturePredictor.Fixed(c.Suite.Model, fit.Vector);
        }
        return new Strategy
        {
            Name = "merge-lorahub",
            Family = StrategyFamily.Merge,
            Variant = "per-task",
            Description = $"LoraHub: per task, weights in [{options.Lower}, {options.Upper}] searched gradient-free ({options.Budget} evaluations, L1 {options.L1}) on {examples} validation examples of that task",
            Deployable = false,
            PredictorFor = t => predictors[t.Name],
            Flops = m => m.FoldedMerge(),
            StoredParameters = Costs.Base(c.Suite) + Costs.Experts(c.Suite),
            FitSeconds = fits.Values.Sum(f => f.Seconds),
            Details = new JsonObject(fits.Select(f => KeyValuePair.Create(f.Key, (JsonNode?)new JsonObject
            {
                ["weights"] = EnsembleStrategies.Weights(c, f.Value.Vector),
                ["start_loss"] = Math.Round(f.Value.UniformLoss, 6),
                ["fitted_loss"] = Math.Round(f.Value.FinalLoss, 6),
            }))),
        };
    }

    internal static Strategy Merge(StrategyContext c, string name, string? variant, string method, Dictionary<string, object>? parameters,
        IReadOnlyList<IReadOnlyList<double>>? weights, string description, double fitSeconds = 0, JsonObject? details = null,
        IReadOnlyList<int>? experts = null, string family = StrategyFamily.Merge)
    {
        var chosen = experts ?? Enumerable.Range(0, c.Suite.Count).ToList();
        var paths = chosen.Select(k => c.Suite.ExpertTasks[k].ExpertPath!).ToList();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var model = ExpertMerge.ToModel(c.Suite.Suite.BasePath, paths, method, parameters, weights, c.Options.Seed);
        details ??= new JsonObject();
        details["method"] = method;
        details["merge_seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 3);
        string recipe = ExpertMerge.Recipe(c.Suite.Suite.BasePath, paths, method, parameters, weights, c.Options.Seed);
        details["recipe"] = recipe;
        return Strategy.Deployed(new MergedModelStrategy(model, recipe), c.Suite.Pool, name, family, variant, description,
            m => m.FoldedMerge(), Costs.Base(c.Suite), fitSeconds, details);
    }
}
