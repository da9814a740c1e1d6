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

    /// <summary>
    /// Task arithmetic θ0 + λ·Σ ΔWₖ at the λ of <see cref="StrategyOptions.TaskArithmeticGrid"/> that scores best on
    /// validation (Ilharco et al. sweep λ over 0.1–1.0). Each λ is scored through the factored mixture with every
    /// weight λ, which is the same model unfolded, so the sweep needs no merge; the chosen λ is merged once.
    /// </summary>
    public static Strategy TaskArithmetic(StrategyContext c)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var grid = c.Options.TaskArithmeticGrid.Select(l => new GridPoint(new() { ["lambda"] = l },
            c.ValidationScore(MixturePredictor.Fixed(c.Suite.Model, Enumerable.Repeat(l, c.Suite.Count).ToArray())))).ToList();
        var chosen = GridPoint.Choose(grid, new() { ["lambda"] = c.Options.TaskArithmeticLambda });
        return Merge(c, "merge-task-arithmetic", null, "task_arithmetic", chosen.Parameters, null,
            $"task arithmetic: θ0 + λ·Σ ΔWₖ, λ = {chosen.Parameters["lambda"]} chosen on validation from {Show(c.Options.TaskArithmeticGrid)}",
            clock.Elapsed.TotalSeconds, GridPoint.Details(grid, chosen));
    }

    /// <summary>
    /// TIES at the TIES paper's top-20 % trim (<see cref="StrategyOptions.TiesDensity"/>) with λ chosen on validation
    /// from <see cref="StrategyOptions.TiesLambdaGrid"/> (the paper sweeps 0.8–2.5).
    /// </summary>
    public static Strategy Ties(StrategyContext c)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var grid = LambdaLine(c, "ties", new() { ["density"] = c.Options.TiesDensity }, c.Options.TiesLambdaGrid);
        var chosen = GridPoint.Choose(grid, new() { ["density"] = c.Options.TiesDensity, ["lambda"] = 1.0 });
        return Merge(c, "merge-ties", null, "ties", chosen.Parameters, null,
            $"TIES: top-{c.Options.TiesDensity:P0} magnitude trim, sign election, disjoint mean, λ = {chosen.Parameters["lambda"]} chosen on validation from {Show(c.Options.TiesLambdaGrid)}",
            clock.Elapsed.TotalSeconds, GridPoint.Details(grid, chosen));
    }

    /// <summary>DARE (keep a fraction, rescale) then TIES sign election, density × λ chosen on validation from a small grid.</summary>
    public static Strategy DareTies(StrategyContext c)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var grid = c.Options.DareDensityGrid.SelectMany(d => LambdaLine(c, "dare_ties", new() { ["density"] = d }, c.Options.DareLambdaGrid)).ToList();
        var chosen = GridPoint.Choose(grid, new() { ["density"] = c.Options.Density, ["lambda"] = 1.0 });
        return Merge(c, "merge-dare-ties", null, "dare_ties", chosen.Parameters, null,
            $"DARE (keep {chosen.Parameters["density"]:P0}, rescale) then TIES sign election, λ = {chosen.Parameters["lambda"]}; density × λ chosen on validation " +
            $"from {Show(c.Options.DareDensityGrid)} × {Show(c.Options.DareLambdaGrid)}; seed {c.Options.Seed}",
            clock.Elapsed.TotalSeconds, GridPoint.Details(grid, chosen));
    }

    /// <summary>
    /// A method's merge θ0 + λ·τ at every λ of <paramref name="lambdas"/>, scored on validation. The methods scale their
    /// mixed delta by λ last, so one merge at λ = 1 gives τ and each λ only rewrites the merged layers as θ0 + λ·τ.
    /// </summary>
    static List<GridPoint> LambdaLine(StrategyContext c, string method, Dictionary<string, object> parameters, IReadOnlyList<double> lambdas)
    {
        var paths = c.Suite.ExpertTasks.Select(t => t.ExpertPath!).ToList();
        using var merged = ExpertMerge.ToModel(c.Suite.Suite.BasePath, paths, method, new Dictionary<string, object>(parameters) { ["lambda"] = 1.0 }, null, c.Options.Seed);
        var deltas = new Dictionary<string, TorchSharp.torch.Tensor>(StringComparer.Ordinal);
        try
        {
            using (TorchSharp.torch.no_grad())
                foreach (var (name, layer) in merged.Linears)
                {
                    var w0 = c.Suite.Model.Linears[name].Weight;
                    var d = layer.Weight.to(TorchSharp.torch.ScalarType.Float32) - w0.to(TorchSharp.torch.ScalarType.Float32);
                    if (d.abs().max().item<float>() > 0) deltas[name] = d;
                    else d.Dispose();
                }
            var grid = new List<GridPoint>();
            foreach (var lambda in lambdas)
            {
                using (TorchSharp.torch.no_grad())
                    foreach (var (name, d) in deltas)
                    {
                        using var scope = TorchSharp.torch.NewDisposeScope();
                        var w0 = c.Suite.Model.Linears[name].Weight;
                        merged.Linears[name].Weight.copy_((w0.to(TorchSharp.torch.ScalarType.Float32) + d * lambda).to(w0.dtype));
                    }
                grid.Add(new GridPoint(new Dictionary<string, object>(parameters) { ["lambda"] = lambda }, c.ValidationScore(new ModelPredictor(merged))));
            }
            return grid;
        }
        finally
        {
            foreach (var d in deltas.Values) d.Dispose();
        }
    }

    static string Show(IReadOnlyList<double> grid) => "{" + string.Join(", ", grid.Select(g => g.ToString(System.Globalization.CultureInfo.InvariantCulture))) + "}";

    /// <summary>
    /// Merge coefficients fitted on validation through the factored mixture, then merged (linear) with them, and held
    /// against the uniform merge on the validation selection set by each task's own metric: uniform weights are inside
    /// the search space, so the fit is kept only when it scores strictly higher (details.validation, details.chosen).
    /// </summary>
    public static Strategy Fitted(StrategyContext c, bool layerWise, FitObjective objective = FitObjective.CrossEntropy)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
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
        string name = $"merge-fitted-{scope}{tag}";
        string description = $"{scope} merge coefficients on the simplex fitted on validation ({EnsembleStrategies.ObjectiveName(objective)}; AdaMerging-style)";
        var fitted = Merge(c, name, StrategyVariant.Fitted, "linear", null, weights, description, 0, details);
        double fittedScore = c.ValidationScore(fitted.PredictorFor(c.Suite.ExpertTasks[0])!);
        double uniformScore = c.ValidationScore("merge-uniform", () => MixturePredictor.Fixed(c.Suite.Model, Enumerable.Repeat(1.0 / c.Suite.Count, c.Suite.Count).ToArray()));
        details["validation"] = new JsonObject { ["uniform"] = Math.Round(uniformScore, 6), ["fitted"] = Math.Round(fittedScore, 6) };
        if (fittedScore > uniformScore)
        {
            details["chosen"] = "fitted";
            return fitted.WithFitSeconds(clock.Elapsed.TotalSeconds);
        }
        fitted.Dispose();
        details["chosen"] = "uniform";
        details["fitted_weights"] = details["weights"]!.DeepClone();
        details.Remove("weights");
        var uniform = Merge(c, name, StrategyVariant.Fitted, "linear", null, null,
            description + "; the fit did not beat the uniform merge on validation, so the uniform merge is served", 0, details);
        return uniform.WithFitSeconds(clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// LoraHub: for every task, weights in [−1.5, 1.5] searched gradient-free on a handful of that task's validation
    /// examples (few-shot composition, held-out tasks included); one merge per task, so it needs the task's identity
    /// and is not one deployable system.
    /// </summary>
    public static Strategy LoraHub(StrategyContext c, int examples = 5, LoraHubOptions? options = null)
    {
        options ??= new LoraHubOptions(Seed: c.Options.Seed);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var tasks = c.Suite.Suite.Tasks;
        // Each task's search is independent (same options, its own examples): side by side on the workers.
        var searched = Runtime.TorchWorkers.Map(tasks, t =>
            WeightFitting.LoraHub(c.Suite, c.Suite.Suite.LoadSplit(t, Evaluation.Suites.Suite.Validation).Take(examples).ToList(), options).Weights);
        double seconds = clock.Elapsed.TotalSeconds;
        var fits = new Dictionary<string, FittedWeights>();
        var predictors = new Dictionary<string, IPredictor>();
        for (int i = 0; i < tasks.Count; i++)
        {
            fits[tasks[i].Name] = searched[i];
            predictors[tasks[i].Name] = MixturePredictor.Fixed(c.Suite.Model, searched[i].Vector);
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
            FitSeconds = seconds,
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

/// <summary>One setting of a validation grid and its mean validation score (each task by its own metric).</summary>
public sealed record GridPoint(Dictionary<string, object> Parameters, double ValidationScore)
{
    /// <summary>
    /// The best-scoring setting; ties go to the setting nearest <paramref name="preferred"/> (the method's published
    /// default), then to the first in grid order, so an uninformative validation set keeps the default.
    /// </summary>
    public static GridPoint Choose(IReadOnlyList<GridPoint> grid, Dictionary<string, object> preferred)
    {
        double best = grid.Max(g => g.ValidationScore);
        double Distance(GridPoint g) => g.Parameters.Sum(p => preferred.TryGetValue(p.Key, out var v) ? Math.Abs(Convert.ToDouble(p.Value) - Convert.ToDouble(v)) : 0);
        return grid.Where(g => g.ValidationScore == best).OrderBy(Distance).First();
    }

    static JsonObject Json(Dictionary<string, object> p) => new(p.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(Convert.ToDouble(kv.Value)))));

    /// <summary>details.grid (every setting with its validation score) and details.chosen, as results.json records them.</summary>
    public static JsonObject Details(IReadOnlyList<GridPoint> grid, GridPoint chosen) => new()
    {
        ["grid"] = new JsonArray(grid.Select(g => (JsonNode)new JsonObject { ["parameters"] = Json(g.Parameters), ["validation_score"] = Math.Round(g.ValidationScore, 6) }).ToArray()),
        ["chosen"] = Json(chosen.Parameters),
    };
}
