using System.Text.Json.Nodes;
using Amalgam.Ensembling;
using Amalgam.Predictors;
using Amalgam.Routing;
using static TorchSharp.torch;

namespace Amalgam.Strategies.Saved;

/// <summary>
/// A per-example router (learned MLP or nearest centroid) on the base model's mean-pooled prompt states, choosing
/// among the pool's experts: its top-k (by parameters or by outputs); or top-1 among an allowed subset (a greedy
/// routing subset); or the cluster with the most routed probability, answered by the cluster's uniform merge
/// (expert clusters). Saved with the router's own files in <c>router/</c>.
/// </summary>
public sealed class RouterStrategy : DeployableStrategy
{
    public const string RouterFolder = "router";

    private readonly IExampleRouter router;
    private readonly bool ownsRouter;

    /// <param name="router">the router; its experts must be the pool's, in order</param>
    /// <param name="topK">experts kept per prompt (1 with <paramref name="allowed"/> or <paramref name="clusters"/>)</param>
    /// <param name="aggregation">how top-k experts combine</param>
    /// <param name="allowed">only these experts may be chosen (top-1 among them); null: all</param>
    /// <param name="clusters">each expert's cluster index; a prompt goes to the cluster with the most probability</param>
    /// <param name="ownsRouter">whether disposing this strategy disposes the router</param>
    /// <param name="features">where the router's prompt features come from (default: the full pass, final norm)</param>
    public RouterStrategy(IExampleRouter router, int topK, RouteAggregation aggregation, IReadOnlyList<int>? allowed = null,
        IReadOnlyList<int>? clusters = null, bool ownsRouter = true, FeatureSource features = default)
    {
        if (topK < 1) throw new ArgumentException($"top_k: must be positive, got {topK}");
        if ((allowed is not null || clusters is not null) && topK != 1) throw new ArgumentException("top_k: subsets and clusters route top-1");
        if (clusters is not null && clusters.Count != router.Experts.Count)
            throw new ArgumentException($"clusters: {clusters.Count} assignments for {router.Experts.Count} experts");
        this.router = router;
        this.ownsRouter = ownsRouter;
        TopK = topK;
        Aggregation = aggregation;
        Allowed = allowed;
        Clusters = clusters;
        Features = features;
    }

    public override string Kind => StrategyKinds.Router;
    public IExampleRouter Router => router;
    public int TopK { get; }
    public RouteAggregation Aggregation { get; }
    public IReadOnlyList<int>? Allowed { get; }
    public IReadOnlyList<int>? Clusters { get; }
    public FeatureSource Features { get; }

    Tensor Probabilities(ExpertPool pool, IReadOnlyList<IReadOnlyList<long>> prompts)
    {
        using var features = PromptFeatures.MeanPooled(pool.Model, prompts, pool.PadId, source: Features);
        return router.Probabilities(features);
    }

    /// <summary>Whether each prompt runs as its top-k experts' rows, their outputs combined (otherwise as one mixed row).</summary>
    public bool RoutesByOutputs => Clusters is null && Allowed is null && Aggregation == RouteAggregation.Outputs && TopK > 1;

    /// <summary>
    /// The per-expert weights [prompts, K] of each prompt's one mixed row, in the pool's expert order: its top-k
    /// routing probabilities, top-1 among the allowed subset, or its cluster's uniform merge. Not for
    /// <see cref="RoutesByOutputs"/> (see <see cref="OutputChoice"/>).
    /// </summary>
    public Tensor MixtureWeights(ExpertPool pool, IReadOnlyList<IReadOnlyList<long>> prompts)
    {
        if (RoutesByOutputs) throw new InvalidOperationException("this router combines its top-k experts' outputs; use OutputChoice");
        if (Clusters is { } clusters) return ClusterWeights(pool, clusters, prompts);
        if (Allowed is { } allowed)
        {
            using var scope = NewDisposeScope();
            var mask = zeros(pool.Count);
            foreach (var k in allowed) mask[k] = 1.0f;
            return RouteSelection.Argmax(Probabilities(pool, prompts) * mask).MoveToOuterDisposeScope();
        }
        using var probs = Probabilities(pool, prompts);
        return RouteSelection.TopK(probs, TopK);
    }

    /// <summary>For <see cref="RoutesByOutputs"/>: each prompt's top-k experts [prompts, k] (int64) and their routing probabilities renormalized to sum to 1.</summary>
    public (Tensor Experts, Tensor Weights) OutputChoice(ExpertPool pool, IReadOnlyList<IReadOnlyList<long>> prompts)
    {
        using var probs = Probabilities(pool, prompts);
        var (values, indices) = probs.topk(TopK, -1);
        using var _ = values;
        return (indices, values / values.sum(-1, keepdim: true));
    }

    public override IPredictor Predictor(ExpertPool pool)
    {
        if (!router.Experts.SequenceEqual(pool.Names))
            throw new ArgumentException($"router experts [{string.Join(", ", router.Experts)}] are not the pool's [{string.Join(", ", pool.Names)}]");
        if (!RoutesByOutputs) return new MixturePredictor(pool.Model, p => MixtureWeights(pool, p));
        return new EnsemblePredictor(pool.Model, pool.Count, p => OutputChoice(pool, p), EnsembleAggregation.Probabilities);
    }

    // M [K, k]: expert → its cluster; a routed row gets 1/|cluster| on each member (the cluster's uniform merge).
    Tensor ClusterWeights(ExpertPool pool, IReadOnlyList<int> clusters, IReadOnlyList<IReadOnlyList<long>> prompts)
    {
        int k = clusters.Max() + 1;
        using var scope = NewDisposeScope();
        var membership = zeros(new long[] { pool.Count, k });
        for (int e = 0; e < pool.Count; e++) membership[e, clusters[e]] = 1.0f;
        var perCluster = (membership / membership.sum(0, keepdim: true)).t().contiguous();   // [k, K]
        var cluster = Probabilities(pool, prompts).matmul(membership).argmax(-1);            // the most routed probability
        return perCluster.index_select(0, cluster).MoveToOuterDisposeScope();
    }

    public override JsonObject Save(string dir, ExpertPool pool)
    {
        switch (router)
        {
            case LearnedRouter l: l.Save(Path.Combine(dir, RouterFolder)); break;
            case CentroidRouter c: c.Save(Path.Combine(dir, RouterFolder)); break;
            default: throw new ArgumentException($"router of type {router.GetType().Name} cannot be saved");
        }
        var o = new JsonObject { ["router"] = RouterFolder, ["top_k"] = TopK, ["aggregation"] = Aggregation.ToString().ToLowerInvariant() };
        if (!Features.IsFinal) o["features"] = Features.ToString();   // absent: the full pass (folders saved before feature sources)
        if (Allowed is not null) o["allowed"] = SavedParameters.Names(Allowed, pool.Names);
        if (Clusters is not null)
            o["clusters"] = new JsonArray(Enumerable.Range(0, Clusters.Max() + 1)
                .Select(c => (JsonNode)SavedParameters.Names(Enumerable.Range(0, pool.Count).Where(e => Clusters[e] == c), pool.Names)).ToArray());
        return o;
    }

    public static RouterStrategy Load(string dir, SavedParameters p, ExpertPool pool)
    {
        var router = RouterFiles.Load(Path.Combine(dir, p.String("router")));
        try
        {
            if (!router.Experts.SequenceEqual(pool.Names))
                throw new InvalidDataException($"{Path.Combine(dir, p.String("router"), RouterFiles.DescriptionFile)}: experts: [{string.Join(", ", router.Experts)}] differ from the strategy's [{string.Join(", ", pool.Names)}]");
            var allowed = p.Optional("allowed") is { } a ? p.ExpertList("allowed", pool.Names, a) : null;
            int[]? clusters = null;
            if (p.Optional("clusters") is { } c)
            {
                if (c is not JsonArray groups) throw new InvalidDataException($"{p.File}: parameters.clusters: expected a list of lists of expert names");
                clusters = Enumerable.Repeat(-1, pool.Count).ToArray();
                for (int g = 0; g < groups.Count; g++)
                    foreach (var e in p.ExpertList($"clusters[{g}]", pool.Names, groups[g]))
                        clusters[e] = clusters[e] < 0 ? g : throw new InvalidDataException($"{p.File}: parameters.clusters: expert '{pool.Names[e]}' is in two clusters");
                if (clusters.Any(x => x < 0)) throw new InvalidDataException($"{p.File}: parameters.clusters: every expert must be in one cluster");
            }
            var features = FeatureSource.Final;
            if (p.Optional("features") is not null)
            {
                try { features = FeatureSource.Parse(p.String("features")); features.LayersRun(pool.Model.Config.NumHiddenLayers); }
                catch (ArgumentException e) { throw new InvalidDataException($"{p.File}: parameters.features: {e.Message}"); }
            }
            return new RouterStrategy(router, p.Int("top_k", min: 1), p.Enum<RouteAggregation>("aggregation"), allowed, clusters, features: features);
        }
        catch
        {
            (router as IDisposable)?.Dispose();
            throw;
        }
    }

    public override void Dispose()
    {
        if (ownsRouter) (router as IDisposable)?.Dispose();
    }
}
