using System.CommandLine;
using Amalgam.Strategies;
using Amalgam.Study;

namespace Amalgam.Cli;

/// <summary><c>amalgam select</c>: expert selection — clusters of experts routed among, greedy soups, greedy routing subsets.</summary>
public static class SelectCommand
{
    static readonly string[] Methods = ["clusters", "greedy-soup", "greedy-routing"];

    public static Command Create()
    {
        var run = new StrategyRun("select");
        var methods = new Option<string[]>("--method") { Description = $"Selection methods (comma-separated): {string.Join(", ", Methods)}; default: all.", AllowMultipleArgumentsPerToken = true };
        var ks = new Option<int[]>("--k") { Description = "Numbers of clusters (comma-separated or repeated); default 2, 4, 6.", AllowMultipleArgumentsPerToken = true };
        var features = new Option<string>("--features") { Description = "What experts are clustered on: mbc (ΔW sketches), arrow (prototypes) or centroids (task prompt states).", DefaultValueFactory = _ => "mbc" };
        var tolerance = new Option<double>("--tolerance") { Description = "Greedy routing: how far below the full library's validation score the subset may stay.", DefaultValueFactory = _ => 0.02 };
        var command = new Command("select", "Select experts (clusters, greedy soup, greedy routing subset) on validation and score the result on test.");
        run.AddTo(command);
        foreach (var o in new Option[] { methods, ks, features, tolerance }) command.Options.Add(o);
        command.SetAction(CliErrors.Guard(parse =>
        {
            var f = StrategyRun.Choice("--features", parse.GetValue(features)!, new Dictionary<string, ClusterFeatures>
            {
                ["mbc"] = ClusterFeatures.Mbc, ["arrow"] = ClusterFeatures.Arrow, ["centroids"] = ClusterFeatures.Centroids,
            });
            double tol = parse.GetValue(tolerance);
            if (!(tol >= 0)) throw new ArgumentException($"--tolerance: must be ≥ 0, got {tol}");
            var clusterCounts = parse.GetValue(ks) is { Length: > 0 } given ? given : [2, 4, 6];
            var names = StrategyRun.Values(parse, methods) is { Count: > 0 } m ? m : [.. Methods];
            var entries = new List<StudyCatalog.Entry>();
            foreach (var name in names)
            {
                if (!Methods.Contains(name)) throw new ArgumentException($"--method: '{name}' is not one of {string.Join(", ", Methods)}");
                if (name == "clusters")
                    entries.AddRange(clusterCounts.Select(k => new StudyCatalog.Entry($"clusters-k{k}", StrategyFamily.Select, c => SelectionStrategies.Clusters(c, k, f))));
                else if (name == "greedy-soup") entries.Add(new(name, StrategyFamily.Select, SelectionStrategies.GreedySoup));
                else entries.Add(new(name, StrategyFamily.Select, c => SelectionStrategies.GreedyRouting(c, tol)));
            }
            run.Run(parse, entries);
            return 0;
        }));
        return command;
    }
}
