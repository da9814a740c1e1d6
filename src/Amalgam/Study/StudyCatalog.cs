using Amalgam.Ensembling;
using Amalgam.Routing;
using Amalgam.Strategies;

namespace Amalgam.Study;

/// <summary>Every strategy the study compares, by name and family, built on demand (in this order).</summary>
public static class StudyCatalog
{
    /// <summary>A strategy of the study; <paramref name="NotApplicable"/> says why it cannot run on a suite of K experts (null: it can).</summary>
    public sealed record Entry(string Name, string Family, Func<StrategyContext, Strategy> Build, Func<int, string?>? NotApplicable = null)
    {
        /// <summary>Why this entry cannot run with <paramref name="experts"/> experts; null when it can.</summary>
        public string? WhyNot(int experts) => NotApplicable?.Invoke(experts);
    }

    /// <summary>k clusters of K experts: k ≥ K clusters every expert alone, which is routing, not selection.</summary>
    static Func<int, string?> ClusterRule(int k) => experts => k >= experts
        ? $"k = {k} clusters need more than {k} experts (the suite has {experts}); with k ≥ K every expert is its own cluster"
        : null;

    /// <summary>Top-k routing needs k experts to choose from.</summary>
    static Func<int, string?> TopRule(int k) => experts => k > experts ? $"top-{k} routing needs at least {k} experts (the suite has {experts})" : null;

    public static IReadOnlyList<Entry> All { get; } =
    [
        new("base", StrategyFamily.Reference, ReferenceStrategies.Base),
        new("expert-oracle", StrategyFamily.Reference, ReferenceStrategies.ExpertOracle),
        new("ensemble-uniform", StrategyFamily.Ensemble, c => EnsembleStrategies.Uniform(c)),
        new("ensemble-fitted", StrategyFamily.Ensemble, c => EnsembleStrategies.Fitted(c)),
        new("merge-uniform", StrategyFamily.Merge, MergeStrategies.Uniform),
        new("merge-task-arithmetic", StrategyFamily.Merge, MergeStrategies.TaskArithmetic),
        new("merge-ties", StrategyFamily.Merge, MergeStrategies.Ties),
        new("merge-dare-ties", StrategyFamily.Merge, MergeStrategies.DareTies),
        new("merge-fitted-task-wise", StrategyFamily.Merge, c => MergeStrategies.Fitted(c, layerWise: false)),
        new("merge-fitted-layer-wise", StrategyFamily.Merge, c => MergeStrategies.Fitted(c, layerWise: true)),
        new("merge-lorahub", StrategyFamily.Merge, c => MergeStrategies.LoraHub(c)),
        new("route-learned-top1", StrategyFamily.Route, c => RoutingStrategies.Learned(c, 1, RouteAggregation.Parameters)),
        new("route-learned-top2-params", StrategyFamily.Route, c => RoutingStrategies.Learned(c, 2, RouteAggregation.Parameters), TopRule(2)),
        new("route-learned-top2-outputs", StrategyFamily.Route, c => RoutingStrategies.Learned(c, 2, RouteAggregation.Outputs), TopRule(2)),
        // Cheaper router features (docs/routing.md#feature-sources): the token embeddings, and the residual stream
        // halfway up the base (layer ⌊L/2⌋: 2 of the bundled base's 4), each charged what it runs of the prompt pass.
        new("route-learned-top1-embeddings", StrategyFamily.Route, c => RoutingStrategies.Learned(c, 1, RouteAggregation.Parameters, FeatureSource.Embeddings)),
        new("route-learned-top1-midlayer", StrategyFamily.Route, c => RoutingStrategies.Learned(c, 1, RouteAggregation.Parameters, MidLayer(c), "route-learned-top1-midlayer")),
        new("route-centroid-top1", StrategyFamily.Route, c => RoutingStrategies.Centroid(c, 1, RouteAggregation.Parameters)),
        new("route-centroid-top2-params", StrategyFamily.Route, c => RoutingStrategies.Centroid(c, 2, RouteAggregation.Parameters), TopRule(2)),
        new("route-centroid-top2-outputs", StrategyFamily.Route, c => RoutingStrategies.Centroid(c, 2, RouteAggregation.Outputs), TopRule(2)),
        new("route-arrow-top1", StrategyFamily.Route, c => RoutingStrategies.Arrow(c, 1)),
        new("route-arrow-top2", StrategyFamily.Route, c => RoutingStrategies.Arrow(c, 2), TopRule(2)),
        new("twin-merging", StrategyFamily.Route, c => RoutingStrategies.Twin(c, groupWise: false)),
        new("twin-merging-groupwise", StrategyFamily.Route, c => RoutingStrategies.Twin(c, groupWise: true)),
        new("select-clusters-k2", StrategyFamily.Select, c => SelectionStrategies.Clusters(c, 2), ClusterRule(2)),
        new("select-clusters-k4", StrategyFamily.Select, c => SelectionStrategies.Clusters(c, 4), ClusterRule(4)),
        new("select-clusters-k6", StrategyFamily.Select, c => SelectionStrategies.Clusters(c, 6), ClusterRule(6)),
        new("select-greedy-soup", StrategyFamily.Select, SelectionStrategies.GreedySoup),
        new("select-greedy-routing", StrategyFamily.Select, c => SelectionStrategies.GreedyRouting(c)),
    ];

    /// <summary>The residual stream after layer ⌊L/2⌋ of the base (at least layer 1).</summary>
    public static FeatureSource MidLayer(StrategyContext c) => FeatureSource.AfterLayer(Math.Max(1, c.Suite.Model.Config.NumHiddenLayers / 2));

    /// <summary>The entries whose name or family is listed (all when the list is empty); unknown names are refused.</summary>
    public static IReadOnlyList<Entry> Select(IReadOnlyCollection<string> namesOrFamilies)
    {
        if (namesOrFamilies.Count == 0) return All;
        Check(namesOrFamilies, "--strategies");
        return All.Where(e => namesOrFamilies.Contains(e.Name) || namesOrFamilies.Contains(e.Family)).ToList();
    }

    /// <summary>The entries minus those whose name or family is listed; unknown names are refused.</summary>
    public static IReadOnlyList<Entry> Skip(IReadOnlyList<Entry> entries, IReadOnlyCollection<string> namesOrFamilies)
    {
        Check(namesOrFamilies, "--skip");
        return entries.Where(e => !namesOrFamilies.Contains(e.Name) && !namesOrFamilies.Contains(e.Family)).ToList();
    }

    static void Check(IReadOnlyCollection<string> namesOrFamilies, string option)
    {
        foreach (var n in namesOrFamilies.Where(n => !All.Any(e => e.Name == n || e.Family == n)))
            throw new ArgumentException($"{option}: unknown strategy or family '{n}' (families: {string.Join(", ", StrategyFamily.All)}; strategies: {string.Join(", ", All.Select(e => e.Name))})");
    }
}
