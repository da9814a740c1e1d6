using Amalgam.Evaluation;
using System.Text.Json.Nodes;
using Amalgam.Ensembling;
using Amalgam.Mixing;
using Amalgam.Models;
using Amalgam.Predictors;
using Amalgam.Routing;
using static TorchSharp.torch;

namespace Amalgam.Strategies;

/// <summary>How a router's chosen experts are combined.</summary>
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
    public static Strategy Learned(StrategyContext c, int topK, RouteAggregation aggregation) =>
        Routed(c, $"route-learned-top{topK}{Suffix(topK, aggregation)}", c.Learned, topK, aggregation, c.LearnedRouterSeconds,
            "MLP on the base model's mean-pooled prompt state, trained on validation task labels",
            m => m.LearnedRouter(topK, c.RouterSizes) + (aggregation == RouteAggregation.Outputs ? m.Ensemble(topK) - m.Loras(topK) : 0),
            Costs.Mlp(c.RouterSizes));

    public static Strategy Centroid(StrategyContext c, int topK, RouteAggregation aggregation) =>
        Routed(c, $"route-centroid-top{topK}{Suffix(topK, aggregation)}", c.Centroid, topK, aggregation, c.CentroidSeconds,
            "nearest centroid (cosine, softmax at T = 0.05) of each task's validation prompt states",
            m => m.CentroidRouter(c.Suite.Count, topK) + (aggregation == RouteAggregation.Outputs ? m.Ensemble(topK) - m.Loras(topK) : 0),
            (long)c.Suite.Count * c.Suite.Model.Config.HiddenSize);

    /// <summary>Arrow: per token and per module, top-k of |⟨x, vₑ⟩| over the experts' prototypes, softmax; training-free.</summary>
    public static Strategy Arrow(StrategyContext c, int topK)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var policy = new ArrowRouting(c.Prototypes, topK);
        double seconds = clock.Elapsed.TotalSeconds;
        var predictor = new MixturePredictor(c.Suite.Model, policy);
        return new Strategy
        {
            Name = $"route-arrow-top{topK}",
            Family = StrategyFamily.Route,
            Description = $"Arrow: per token and module, top-{topK} experts by |⟨x, v⟩| with v each expert's top right singular vector of B·A (training-free)",
            PredictorFor = _ => predictor,
            Flops = m => m.ArrowRouter(c.Suite.Count, topK),
            StoredParameters = Costs.Base(c.Suite) + Costs.Experts(c.Suite) + c.Prototypes.Modules.Values.Sum(p => p.Vectors.numel()),
            FitSeconds = seconds,
            Details = new JsonObject { ["top_k"] = topK, ["temperature"] = ArrowRouting.DefaultTemperature },
        };
    }

    static Strategy Routed(StrategyContext c, string name, IExampleRouter router, int topK, RouteAggregation aggregation, double fitSeconds,
        string how, Func<CostModel, double> flops, long routerParameters)
    {
        Tensor Probabilities(IReadOnlyList<IReadOnlyList<long>> prompts)
        {
            using var features = c.Features(prompts);
            return router.Probabilities(features);
        }
        IPredictor predictor = aggregation == RouteAggregation.Parameters || topK == 1
            ? new MixturePredictor(c.Suite.Model, p => { using var probs = Probabilities(p); return RouteSelection.TopK(probs, topK); })
            : new EnsemblePredictor(c.Suite.Model, c.Suite.Count, p =>
            {
                using var probs = Probabilities(p);
                var (values, indices) = probs.topk(topK, -1);
                using var _ = values;
                return (indices, values / values.sum(-1, keepdim: true));
            }, EnsembleAggregation.Probabilities);
        return new Strategy
        {
            Name = name,
            Family = StrategyFamily.Route,
            Description = $"{how}; top-{topK}{(topK > 1 ? aggregation == RouteAggregation.Parameters ? ", experts mixed in parameters" : ", experts' outputs averaged" : "")}",
            PredictorFor = _ => predictor,
            Flops = flops,
            StoredParameters = Costs.Base(c.Suite) + Costs.Experts(c.Suite) + routerParameters,
            FitSeconds = fitSeconds,
            Details = new JsonObject { ["top_k"] = topK, ["aggregation"] = aggregation.ToString() },
        };
    }

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
        var library = new ExpertLibrary(shared, exclusive);
        var router = c.TrainLearned(shared);
        double seconds = clock.Elapsed.TotalSeconds;
        Tensor Weights(IReadOnlyList<IReadOnlyList<long>> prompts)
        {
            using var scope = NewDisposeScope();
            using var features = PromptFeatures.MeanPooled(shared, prompts, c.Suite.PadId);
            var probs = router.Probabilities(features);
            if (!groupWise) return probs.MoveToOuterDisposeScope();
            // Group-wise: one merge per group of inputs sharing the router's top expert, weighted by the group's mean.
            var group = probs.argmax(-1);
            var oneHot = nn.functional.one_hot(group, c.Suite.Count).to(ScalarType.Float32);      // [N, K]
            var means = oneHot.t().matmul(probs) / oneHot.sum(0, keepdim: false).clamp_min(1).unsqueeze(1);       // [K groups, K]
            return means.index_select(0, group).MoveToOuterDisposeScope();
        }
        var predictor = new MixturePredictor(shared, Weights);
        long exclusiveParameters = exclusive.Sum(Costs.Adapter);
        int rank = (int)exclusive[0].Deltas.Values.First().Rank;
        return new Strategy
        {
            Name = groupWise ? "twin-merging-groupwise" : "twin-merging",
            Family = StrategyFamily.Route,
            Description = $"Twin-Merging: task arithmetic (λ = {c.Options.TaskArithmeticLambda}) shared model + exclusive parts (rank {rank}) mixed by a router's softmax "
                + (groupWise ? "averaged over each group of inputs with the same top expert" : "per example"),
            PredictorFor = _ => predictor,
            // Served factored: shared folded, K exclusive rank-r LoRAs at every token, plus the router's features and MLP.
            // (LoRA FLOPs are linear in the rank, so the exclusive rank scales one expert's count.)
            Flops = m => m.PromptFeatures() + m.RouterMlp(c.RouterSizes)
                + m.Tokens * (m.ForwardPerToken + c.Suite.Count * m.LoraPerToken * rank / ExpertRank(c)),
            StoredParameters = Costs.Base(c.Suite) + exclusiveParameters + Costs.Mlp(c.RouterSizes),
            FitSeconds = seconds,
            Details = new JsonObject { ["lambda"] = c.Options.TaskArithmeticLambda, ["exclusive_rank"] = rank, ["group_wise"] = groupWise },
            Owned = [router, library, .. exclusive, shared],
        };
    }

    static int ExpertRank(StrategyContext c) => (int)c.Suite.Experts[0].Deltas.Values.First().Rank;

    static string Suffix(int topK, RouteAggregation a) => topK == 1 ? "" : a == RouteAggregation.Parameters ? "-params" : "-outputs";
}
