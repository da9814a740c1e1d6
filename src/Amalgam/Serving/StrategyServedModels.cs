using Amalgam.Serving.Engine;
using Amalgam.Strategies.Saved;
using static TorchSharp.torch;

namespace Amalgam.Serving;

/// <summary>
/// Saved strategy folders as served models. The strategy's experts are loaded into the engine under
/// <c>NAME/expert</c> (<see cref="ExpertName"/>), so its rows share the base's mixed batch with every other request;
/// a plan gives those rows exactly the weights <c>amalgam generate --strategy DIR</c> applies (the same saved
/// strategy computes them, on the same prompt alone).
/// </summary>
public static class StrategyServedModels
{
    /// <summary>The engine's name for expert <paramref name="expert"/> of strategy <paramref name="strategy"/>.</summary>
    public static string ExpertName(string strategy, string expert) => $"{strategy}/{expert}";

    static Dictionary<string, double> Named(string id, IReadOnlyList<string> experts, float[] weights) =>
        experts.Select((e, k) => (Name: ExpertName(id, e), Weight: (double)weights[k])).Where(x => x.Weight != 0).ToDictionary(x => x.Name, x => x.Weight, StringComparer.Ordinal);

    /// <summary>A router over the pool's experts: top-k by parameters (one row), top-k by outputs (k rows), a subset or clusters.</summary>
    public sealed class Router(string id, LoadedStrategy loaded) : IServedModel
    {
        private readonly RouterStrategy router = (RouterStrategy)loaded.Strategy;
        public string Id => id;
        public string Kind => "router";
        public int RowsPerRequest => router.RoutesByOutputs ? router.TopK : 1;

        public ExpertPlan Plan(IReadOnlyList<long> prompt)
        {
            var pool = loaded.Pool;
            using var mode = inference_mode();
            using var scope = NewDisposeScope();
            if (!router.RoutesByOutputs)
                return ExpertPlan.Mixture(Named(id, pool.Names, router.MixtureWeights(pool, [prompt]).to(ScalarType.Float32).contiguous().data<float>().ToArray()));
            var (experts, weights) = router.OutputChoice(pool, [prompt]);
            var chosen = experts.contiguous().data<long>().ToArray();
            var w = weights.to(ScalarType.Float64).contiguous().data<double>().ToArray();
            return new ExpertPlan(chosen.Select(k => (IReadOnlyDictionary<string, double>)new Dictionary<string, double> { [ExpertName(id, pool.Names[(int)k])] = 1 }).ToList(),
                ExpertAggregation.Outputs, w);
        }
    }

    /// <summary>An output ensemble of every expert of the pool with fixed weights: K rows per request.</summary>
    public sealed class Ensemble(string id, LoadedStrategy loaded) : IServedModel
    {
        private readonly EnsembleStrategy ensemble = (EnsembleStrategy)loaded.Strategy;
        public string Id => id;
        public string Kind => "ensemble";
        public int RowsPerRequest => loaded.Pool.Count;

        public ExpertPlan Plan(IReadOnlyList<long> prompt) =>
            new(loaded.Pool.Names.Select(e => (IReadOnlyDictionary<string, double>)new Dictionary<string, double> { [ExpertName(id, e)] = 1 }).ToList(),
                ExpertAggregation.Outputs, ensemble.Weights, ensemble.Aggregation);
    }

    /// <summary>A merge folded into a model of its own: answered by its own engine, with no expert.</summary>
    public sealed class FoldedMerge(string id, ServingEngine engine) : IServedModel
    {
        public string Id => id;
        public string Kind => "merged-model";
        public int RowsPerRequest => 1;
        public ExpertPlan Plan(IReadOnlyList<long> prompt) => ExpertPlan.Base;
        public ServingEngine? Engine => engine;
    }

    /// <summary>
    /// Twin-Merging per request: its own engine on (a copy of) the shared merged model with the exclusive parts as
    /// adapters; the saved router weighs them from the shared model's states of the prompt.
    /// </summary>
    public sealed class TwinMerging(string id, LoadedStrategy loaded, ServingEngine engine) : IServedModel
    {
        private readonly TwinMergingStrategy twin = (TwinMergingStrategy)loaded.Strategy;
        public string Id => id;
        public string Kind => "twin-merging";
        public int RowsPerRequest => 1;
        public ServingEngine? Engine => engine;

        public ExpertPlan Plan(IReadOnlyList<long> prompt)
        {
            using var mode = inference_mode();
            using var scope = NewDisposeScope();
            var w = twin.Weights([prompt], loaded.Pool.PadId).to(ScalarType.Float32).contiguous().data<float>().ToArray();
            return ExpertPlan.Mixture(Named(id, twin.Exclusive.Select(e => e.Name).ToList(), w));
        }
    }
}
