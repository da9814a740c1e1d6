using Amalgam.Strategies.Saved;
using Amalgam.Evaluation;
using System.Text.Json.Nodes;
using Amalgam.Ensembling;
using Amalgam.Mixing;
using Amalgam.Models;
using Amalgam.Predictors;
using Amalgam.Routing;
using static TorchSharp.torch;

namespace Amalgam.Strategies;

/// <summary>How a router's chosen experts are combined (see <see cref="Saved.RouterStrategy"/>).</summary>
public enum RouteAggregation
{
    /// <summary>One mixture Σₖ wₖ·ΔWₖ per row, in factored form (one forward per prompt).</summary>
    Parameters,
    /// <summary>The chosen experts run as separate rows and their distributions are averaged (k forwards per prompt).</summary>
    Outputs,
}

/// <summary>
/// Routing: weights over the experts as a function of the input. Per-example routers (learned MLP, nearest centroid)
/// read the base model's mean-pooled prompt features; Arrow reads every token's input at every module; Twin-Merging
/// routes among exclusive experts on top of a shared merged model.
/// </summary>
public static class RoutingStrategies
{
    /// <summary>
    /// The learned router on features from <paramref name="source"/> (default: the full prompt pass); a cheaper source
    /// is named in the strategy's name (<c>-embeddings</c>, <c>-layer-2</c>, or <paramref name="name"/>) and costs its share of the pass.
    /// </summary>
    public static Strategy Learned(StrategyContext c, int topK, RouteAggregation aggregation, FeatureSource source = default, string? name = null)
    {
        var (router, seconds) = c.LearnedRouter(source);
        return Routed(c, name ?? $"route-learned-top{topK}{Suffix(topK, aggregation)}{(source.IsFinal ? "" : "-" + source)}", router, topK, aggregation, seconds,
            $"MLP on the base model's mean-pooled {Describe(c, source)}, trained on validation task labels",
            m => m.LearnedRouter(topK, c.RouterSizes, source) + (aggregation == RouteAggregation.Outputs ? m.Ensemble(topK) - m.Loras(topK) : 0),
            Costs.Mlp(c.RouterSizes), source);
    }

    public static Strategy Centroid(StrategyContext c, int topK, RouteAggregation aggregation)
    {
        var (router, seconds) = c.CentroidRouter();
        return Routed(c, $"route-centroid-top{topK}{Suffix(topK, aggregation)}", router, topK, aggregation, seconds,
            "nearest centroid (cosine, softmax at T = 0.05) of each task's validation prompt states",
            m => m.CentroidRouter(c.Suite.Count, topK) + (aggregation == RouteAggregation.Outputs ? m.Ensemble(topK) - m.Loras(topK) : 0),
            (long)c.Suite.Count * c.Suite.Model.Config.HiddenSize, FeatureSource.Final);
    }

    /// <summary>What a feature source reads, in words, for a description.</summary>
    public static string Describe(StrategyContext c, FeatureSource source) => source.Layers switch
    {
        null => "final-norm prompt state (a full prompt pass)",
        0 => "token embeddings of the prompt (no layer runs)",
        int k => $"residual stream after layer {k} of {c.Suite.Model.Config.NumHiddenLayers} (a {k}/{c.Suite.Model.Config.NumHiddenLayers} prompt pass)",
    };

    /// <summary>Arrow: per token and per module, top-k of |⟨x, vₑ⟩| over the experts' prototypes, softmax; training-free.</summary>
    public static Strategy Arrow(StrategyContext c, int topK)
    {
        var (prototypes, seconds) = c.ArrowPrototypes();
        return Strategy.Deployed(new ArrowStrategy(topK, ArrowRouting.DefaultTemperature, prototypes), c.Suite.Pool, $"route-arrow-top{topK}",
            StrategyFamily.Route, null,
            $"Arrow: per token and module, top-{topK} experts by |⟨x, v⟩| with v each expert's top right singular vector of B·A (training-free)",
            m => m.ArrowRouter(c.Suite.Count, topK),
            Costs.Base(c.Suite) + Costs.Experts(c.Suite) + prototypes.Modules.Values.Sum(p => p.Vectors.numel()), seconds,
            new JsonObject { ["top_k"] = topK, ["temperature"] = ArrowRouting.DefaultTemperature });
    }

    static Strategy Routed(StrategyContext c, string name, IExampleRouter router, int topK, RouteAggregation aggregation, double fitSeconds,
        string how, Func<CostModel, double> flops, long routerParameters, FeatureSource source) =>
        Strategy.Deployed(new RouterStrategy(router, topK, aggregation, ownsRouter: false, features: source), c.Suite.Pool, name, StrategyFamily.Route, null,
            $"{how}; top-{topK}{(topK > 1 ? aggregation == RouteAggregation.Parameters ? ", experts mixed in parameters" : ", experts' outputs averaged" : "")}",
            flops, Costs.Base(c.Suite) + Costs.Experts(c.Suite) + routerParameters, fitSeconds,
            new JsonObject { ["top_k"] = topK, ["aggregation"] = aggregation.ToString(), ["feature_source"] = source.ToString() });

    /// <summary>
    /// Twin-Merging: shared model = task arithmetic (λ) of the experts, exclusive parts SVD-compressed to the experts'
    /// rank, a learned router on the shared model's prompt states; per example shared + Σ softmax(router)ₖ·exclusiveₖ,
    /// or group-wise: examples grouped by the router's top expert, one merge (the group's mean weights) per group.
    /// </summary>
    public static Strategy Twin(StrategyContext c, bool groupWise, TwinMergingOptions? options = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var paths = c.Suite.ExpertTasks.Select(t => t.ExpertPath!).ToList();
        var shared = ExpertMerge.ToModel(c.Suite.Suite.BasePath, paths, "task_arithmetic", new Dictionary<string, object> { ["lambda"] = c.Options.TaskArithmeticLambda });
        var exclusive = TwinMerging.Exclusive(c.Suite.Model, shared, c.Suite.Experts, options);
        var router = c.TrainLearned(shared);
        double seconds = clock.Elapsed.TotalSeconds;
        long exclusiveParameters = exclusive.Sum(Costs.Adapter);
        int rank = (int)exclusive[0].Deltas.Values.First().Rank;
        return Strategy.Deployed(new TwinMergingStrategy(shared, exclusive, router, groupWise), c.Suite.Pool,
            groupWise ? "twin-merging-groupwise" : "twin-merging", StrategyFamily.Route, null,
            $"Twin-Merging: task arithmetic (λ = {c.Options.TaskArithmeticLambda}) shared model + exclusive parts (rank {rank}) mixed by a router's softmax "
                + (groupWise ? "averaged over each group of inputs with the same top expert" : "per example"),
            m => m.TwinMerging(c.Suite.Count, c.RouterSizes, rank, ExpertRank(c)),
            Costs.Base(c.Suite) + exclusiveParameters + Costs.Mlp(c.RouterSizes), seconds,
            new JsonObject { ["lambda"] = c.Options.TaskArithmeticLambda, ["exclusive_rank"] = rank, ["group_wise"] = groupWise, ["feature_source"] = "final (shared model)" });
    }

    static int ExpertRank(StrategyContext c) => (int)c.Suite.Experts[0].Deltas.Values.First().Rank;

    static string Suffix(int topK, RouteAggregation a) => topK == 1 ? "" : a == RouteAggregation.Parameters ? "-params" : "-outputs";
}
