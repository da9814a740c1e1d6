using System.CommandLine;
using Amalgam.Strategies;
using Amalgam.Study;

namespace Amalgam.Cli;

/// <summary><c>amalgam route</c>: train routers on validation, save them, and score routing on the test splits.</summary>
public static class RouteCommand
{
    static readonly string[] Routers = ["learned", "centroid", "arrow", "twin", "twin-groupwise"];

    public static Command Create()
    {
        var run = new StrategyRun("route");
        var routers = new Option<string[]>("--router") { Description = $"Routers (comma-separated): {string.Join(", ", Routers)}; default: all.", AllowMultipleArgumentsPerToken = true };
        var topK = new Option<int[]>("--top-k") { Description = "Experts per input (1..K; K = dense), comma-separated or repeated; default 1. Twin-Merging is always dense.", AllowMultipleArgumentsPerToken = true };
        var aggregation = new Option<string>("--aggregation") { Description = "parameters (one factored mixture per row) or outputs (the chosen experts' distributions averaged); top-k > 1 only.", DefaultValueFactory = _ => "parameters" };
        var save = new Option<string?>("--save-routers") { Description = "Folder to save the trained learned/ and centroid/ routers in (router.json + router.safetensors)." };
        var command = new Command("route", "Route each input to the suite's experts (learned MLP, centroid, Arrow, Twin-Merging) and score it.");
        run.AddTo(command);
        foreach (var o in new Option[] { routers, topK, aggregation, save }) command.Options.Add(o);
        command.SetAction(CliErrors.Guard(parse =>
        {
            var agg = StrategyRun.Choice("--aggregation", parse.GetValue(aggregation)!, new Dictionary<string, RouteAggregation>
            {
                ["parameters"] = RouteAggregation.Parameters, ["outputs"] = RouteAggregation.Outputs,
            });
            var ks = parse.GetValue(topK) is { Length: > 0 } given ? given : [1];
            if (ks.Any(k => k < 1)) throw new ArgumentException($"--top-k: must be ≥ 1, got {string.Join(", ", ks)}");
            var names = StrategyRun.Values(parse, routers) is { Count: > 0 } r ? r : [.. Routers];
            var entries = new List<StudyCatalog.Entry>();
            foreach (var name in names)
            {
                if (!Routers.Contains(name)) throw new ArgumentException($"--router: '{name}' is not one of {string.Join(", ", Routers)}");
                if (name is "twin" or "twin-groupwise")
                {
                    entries.Add(new(name == "twin" ? "twin-merging" : "twin-merging-groupwise", StrategyFamily.Route, c => RoutingStrategies.Twin(c, name == "twin-groupwise")));
                    continue;
                }
                foreach (var k in ks)
                    // Entry names are the strategies' own names (as in results.json); k is capped at K when the suite loads.
                    entries.Add(new($"route-{name}-top{k}{(k == 1 || name == "arrow" ? "" : agg == RouteAggregation.Parameters ? "-params" : "-outputs")}", StrategyFamily.Route, name switch
                    {
                        "learned" => c => RoutingStrategies.Learned(c, Math.Min(k, c.Suite.Count), agg),
                        "centroid" => c => RoutingStrategies.Centroid(c, Math.Min(k, c.Suite.Count), agg),
                        _ => c => RoutingStrategies.Arrow(c, Math.Min(k, c.Suite.Count)),
                    }));
            }
            if (parse.GetValue(save) is { } dir)
            {
                // The same routers the run trains (same data, seed and settings), saved for reuse.
                Tensors.OutputGuard.Check(dir, [parse.GetValue(run.Suite)]);
                using var suite = ExpertSuite.Load(parse.GetValue(run.Suite)!);
                using var context = new StrategyContext(suite, parse.GetValue(run.Quick) ? StrategyOptions.Quick with { Seed = parse.GetValue(run.Seed) } : new StrategyOptions(Seed: parse.GetValue(run.Seed)));
                context.LearnedRouter().Value.Save(Path.Combine(dir, "learned"));
                context.CentroidRouter().Value.Save(Path.Combine(dir, "centroid"));
                Console.Error.WriteLine($"routers saved in {Path.Combine(dir, "learned")} and {Path.Combine(dir, "centroid")}");
            }
            run.Run(parse, entries.DistinctBy(e => e.Name).ToList());
            return 0;
        }));
        return command;
    }
}
