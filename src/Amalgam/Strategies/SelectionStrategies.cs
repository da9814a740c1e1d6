using Amalgam.Strategies.Saved;
using System.Text.Json.Nodes;
using Amalgam.Predictors;
using Amalgam.Routing;
using Amalgam.Selection;
using static TorchSharp.torch;

namespace Amalgam.Strategies;

/// <summary>What experts are clustered on.</summary>
public enum ClusterFeatures
{
    /// <summary>Model-based clustering: each expert's top-magnitude ΔW sketch, reduced by SVD (cosine).</summary>
    Mbc,
    /// <summary>Each expert's Arrow prototypes, concatenated over modules.</summary>
    Arrow,
    /// <summary>The mean base-model prompt state of each expert's task (the centroid router's centroids).</summary>
    Centroids,
}

/// <summary>
/// Expert selection: serve fewer (merged) experts. Clusters of similar experts are merged (uniform mean of their
/// updates) and routed among; the greedy soup keeps the experts whose addition does not lower the merged model's
/// validation score; the greedy routing subset is the smallest set whose routed validation score stays within a
/// tolerance of the full library's.
/// </summary>
public static class SelectionStrategies
{
    public static Strategy Clusters(StrategyContext c, int k, ClusterFeatures features = ClusterFeatures.Mbc)
    {
        int experts = c.Suite.Count;
        if (k < 1 || k > experts) throw new ArgumentException($"clusters: k = {k} must be between 1 and the number of experts ({experts})");
        // Shared fits first (each charged in full), then this strategy's own work on the clock.
        var (router, sharedSeconds) = c.LearnedRouter();
        Shared<ArrowPrototypes>? prototypes = features == ClusterFeatures.Arrow ? c.ArrowPrototypes() : null;
        Shared<CentroidRouter>? centroids = features == ClusterFeatures.Centroids ? c.CentroidRouter() : null;
        sharedSeconds += (prototypes?.Seconds ?? 0) + (centroids?.Seconds ?? 0);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var points = features switch
        {
            ClusterFeatures.Mbc => ExpertFeatures.Mbc(c.Suite.Experts),
            ClusterFeatures.Arrow => ExpertFeatures.FromRows(cat(prototypes!.Value.Value.Modules.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value.Vectors).ToArray(), 1)),
            _ => ExpertFeatures.FromRows(centroids!.Value.Value.Centroids),
        };
        var km = KMeans.Fit(points, k, c.Options.Seed, KMeansDistance.Cosine);
        var members = km.Members();
        double seconds = clock.Elapsed.TotalSeconds + sharedSeconds;
        double meanSize = members.Sum(m => (double)m.Length * m.Length) / experts; // an expert's cluster size, tasks equally likely
        return Strategy.Deployed(new RouterStrategy(router, 1, RouteAggregation.Parameters, clusters: km.Assignments, ownsRouter: false), c.Suite.Pool,
            $"select-clusters-k{k}{(features == ClusterFeatures.Mbc ? "" : "-" + features.ToString().ToLowerInvariant())}",
            StrategyFamily.Select, StrategyVariant.Cluster,
            $"k-means (k = {k}, k-means++, cosine) on {Describe(features)}; each cluster's uniform merge, routed by the learned router's summed probabilities (top-1 cluster)",
            m => m.PromptFeatures() + m.RouterMlp(c.RouterSizes) + m.Tokens * (m.ForwardPerToken + meanSize * m.LoraPerToken),
            Costs.Base(c.Suite) + Costs.Experts(c.Suite) + Costs.Mlp(c.RouterSizes), seconds,
            new JsonObject
            {
                ["features"] = features.ToString().ToLowerInvariant(),
                ["clusters"] = new JsonArray(members.Select(m => (JsonNode)new JsonArray(m.Select(e => (JsonNode)c.Suite.Names[e]).ToArray())).ToArray()),
                ["inertia"] = Math.Round(km.Inertia, 6),
                ["feature_source"] = FeatureSource.Final.ToString(),
            });
    }

    /// <summary>The greedy soup: experts sorted by their own validation score, each kept if the uniform merge does not drop.</summary>
    public static Strategy GreedySoup(StrategyContext c)
    {
        var (individual, correctnessSeconds) = PerExpertScores(c);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var soup = Selection.GreedySoup.Select(individual, set =>
        {
            var w = new double[c.Suite.Count];
            foreach (var k in set) w[k] = 1.0 / set.Count;
            return c.ValidationScore(MixturePredictor.Fixed(c.Suite.Model, w));
        });
        double seconds = clock.Elapsed.TotalSeconds + correctnessSeconds;
        var details = new JsonObject
        {
            ["chosen"] = new JsonArray(soup.Chosen.Select(k => (JsonNode)c.Suite.Names[k]).ToArray()),
            ["validation_score"] = Math.Round(soup.Score, 6),
            ["trace"] = new JsonArray(soup.Trace.Select(t => (JsonNode)new JsonObject
            {
                ["expert"] = c.Suite.Names[t.Candidate], ["individual"] = Math.Round(t.IndividualScore, 6),
                ["score_with"] = Math.Round(t.ScoreWith, 6), ["accepted"] = t.Accepted,
            }).ToArray()),
        };
        return MergeStrategies.Merge(c, "select-greedy-soup", StrategyVariant.Greedy, "linear", null, null,
            $"greedy soup: {soup.Chosen.Count} of {c.Suite.Count} experts merged (uniform mean), each kept only if the validation score did not drop",
            seconds, details, soup.Chosen, StrategyFamily.Select);
    }

    /// <summary>The smallest greedy set of experts whose learned-router top-1 validation score is within the tolerance of all K.</summary>
    public static Strategy GreedyRouting(StrategyContext c, double? tolerance = null)
    {
        double tol = tolerance ?? c.Options.RoutingTolerance;
        var (router, routerSeconds) = c.LearnedRouter();
        var (correct, correctnessSeconds) = c.ExpertCorrectness();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var set = c.SelectionSet;
        double[,] probs;
        using (var features = c.Features(set.Select(d => c.Suite.PromptIds(d.Example)).ToList()))
        using (var p = router.Probabilities(features))
        {
            var flat = p.data<float>().ToArray();
            probs = new double[set.Count, c.Suite.Count];
            for (int n = 0; n < set.Count; n++) for (int k = 0; k < c.Suite.Count; k++) probs[n, k] = flat[n * c.Suite.Count + k];
        }
        var result = GreedyRoutingSubset.Select(c.Suite.Count, GreedyRoutingSubset.RoutedTop1Score(correct, probs), tol);
        double seconds = clock.Elapsed.TotalSeconds + routerSeconds + correctnessSeconds;
        return Strategy.Deployed(new RouterStrategy(router, 1, RouteAggregation.Parameters, allowed: result.Chosen, ownsRouter: false), c.Suite.Pool,
            "select-greedy-routing", StrategyFamily.Select, StrategyVariant.Greedy,
            $"learned router (top-1) restricted to {result.Chosen.Count} of {c.Suite.Count} experts: the smallest greedy set within {tol} of the full library's validation score",
            m => m.LearnedRouter(1, c.RouterSizes),
            Costs.Base(c.Suite) + Costs.Experts(c.Suite, result.Chosen) + Costs.Mlp(c.RouterSizes), seconds,
            new JsonObject
            {
                ["chosen"] = new JsonArray(result.Chosen.Select(k => (JsonNode)c.Suite.Names[k]).ToArray()),
                ["validation_score"] = Math.Round(result.Score, 6),
                ["full_library_score"] = Math.Round(result.FullScore, 6),
                ["tolerance"] = tol,
                ["feature_source"] = FeatureSource.Final.ToString(),
            });
    }

    /// <summary>Each expert's mean score over the held-in tasks of the selection set, and the seconds the shared correctness table took.</summary>
    static (double[] Scores, double Seconds) PerExpertScores(StrategyContext c)
    {
        var (correct, seconds) = c.ExpertCorrectness();
        return (Enumerable.Range(0, c.Suite.Count)
            .Select(k => c.TaskMean(Enumerable.Range(0, c.SelectionSet.Count).Select(n => correct[n, k]).ToList())).ToArray(), seconds);
    }

    static string Describe(ClusterFeatures f) => f switch
    {
        ClusterFeatures.Mbc => "the experts' top-20 % ΔW sketches reduced by SVD (MBC)",
        ClusterFeatures.Arrow => "the experts' Arrow prototypes",
        _ => "the experts' task centroids of base prompt states",
    };
}
