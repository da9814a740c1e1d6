using System.CommandLine;
using System.Text.Json.Nodes;
using Amalgam.Strategies;
using Amalgam.Study;

namespace Amalgam.Cli;

/// <summary><c>amalgam fit</c>: non-uniform weights fitted on validation (ensemble weights, merge coefficients, LoraHub), scored on test.</summary>
public static class FitCommand
{
    static readonly string[] Targets = ["ensemble", "merge-task-wise", "merge-layer-wise", "lorahub"];

    public static Command Create()
    {
        var run = new StrategyRun("fit");
        var targets = new Option<string[]>("--target") { Description = $"What to fit (comma-separated): {string.Join(", ", Targets)}; default: ensemble, merge-task-wise, merge-layer-wise.", AllowMultipleArgumentsPerToken = true };
        var objective = new Option<string>("--objective") { Description = "cross-entropy (supervised) or entropy (unsupervised, AdaMerging); not for lorahub.", DefaultValueFactory = _ => "cross-entropy" };
        var examples = new Option<int>("--examples") { Description = "LoraHub: validation examples per task to search on.", DefaultValueFactory = _ => 5 };
        var recipes = new Option<string?>("--recipes") { Description = "Folder to write each fitted merge's recipe in (NAME.yaml), for `amalgam merge`." };
        var command = new Command("fit", "Fit non-uniform ensemble weights or merge coefficients on the validation splits and score them on test.");
        run.AddTo(command);
        foreach (var o in new Option[] { targets, objective, examples, recipes }) command.Options.Add(o);
        command.SetAction(CliErrors.Guard(parse =>
        {
            var obj = StrategyRun.Choice("--objective", parse.GetValue(objective)!, EnsembleCommand.Objectives);
            int n = parse.GetValue(examples);
            if (n < 1) throw new ArgumentException($"--examples: must be ≥ 1, got {n}");
            var names = StrategyRun.Values(parse, targets) is { Count: > 0 } t ? t : ["ensemble", "merge-task-wise", "merge-layer-wise"];
            var entries = names.Select(name => StrategyRun.Choice("--target", name, new Dictionary<string, StudyCatalog.Entry>
            {
                ["ensemble"] = new("ensemble-fitted", StrategyFamily.Ensemble, c => EnsembleStrategies.Fitted(c, obj)),
                ["merge-task-wise"] = new("merge-fitted-task-wise", StrategyFamily.Merge, c => MergeStrategies.Fitted(c, false, obj)),
                ["merge-layer-wise"] = new("merge-fitted-layer-wise", StrategyFamily.Merge, c => MergeStrategies.Fitted(c, true, obj)),
                ["lorahub"] = new("merge-lorahub", StrategyFamily.Merge, c => MergeStrategies.LoraHub(c, n)),
            })).ToList();
            var results = run.Run(parse, entries);
            if (parse.GetValue(recipes) is { } dir)
                foreach (var r in results.Strategies.Where(r => r.Details?["recipe"] is JsonValue))
                {
                    Directory.CreateDirectory(dir);
                    var file = Path.Combine(dir, r.Name + ".yaml");
                    Tensors.AtomicFile.WriteAllText(file, r.Details!["recipe"]!.GetValue<string>());
                    Console.WriteLine($"recipe: {file}");
                }
            return 0;
        }));
        return command;
    }
}
