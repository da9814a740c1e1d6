using System.CommandLine;
using Amalgam.Ensembling;
using Amalgam.Strategies;
using Amalgam.Study;

namespace Amalgam.Cli;

/// <summary><c>amalgam ensemble</c>: output ensembles of all the suite's experts, uniform and/or with fitted weights.</summary>
public static class EnsembleCommand
{
    static readonly Dictionary<string, EnsembleAggregation> Aggregations = new()
    {
        ["probabilities"] = EnsembleAggregation.Probabilities, ["log-probabilities"] = EnsembleAggregation.LogProbabilities,
    };
    internal static readonly Dictionary<string, FitObjective> Objectives = new()
    {
        ["cross-entropy"] = FitObjective.CrossEntropy, ["entropy"] = FitObjective.Entropy,
    };

    public static Command Create()
    {
        var run = new StrategyRun("ensemble");
        var weights = new Option<string[]>("--weights") { Description = "uniform and/or fitted (comma-separated); default: both.", AllowMultipleArgumentsPerToken = true };
        var aggregation = new Option<string>("--aggregation") { Description = "probabilities (mixture) or log-probabilities (product of experts).", DefaultValueFactory = _ => "probabilities" };
        var objective = new Option<string>("--objective") { Description = "What fitted weights minimise on validation: cross-entropy or entropy (unsupervised).", DefaultValueFactory = _ => "cross-entropy" };
        var command = new Command("ensemble", "Ensemble the suite's experts by their outputs (K rows per prompt, distributions combined every step) and score it.");
        run.AddTo(command);
        foreach (var o in new Option[] { weights, aggregation, objective }) command.Options.Add(o);
        command.SetAction(CliErrors.Guard(parse =>
        {
            var agg = StrategyRun.Choice("--aggregation", parse.GetValue(aggregation)!, Aggregations);
            var obj = StrategyRun.Choice("--objective", parse.GetValue(objective)!, Objectives);
            var kinds = StrategyRun.Values(parse, weights) is { Count: > 0 } w ? w : ["uniform", "fitted"];
            var entries = kinds.Select(k => StrategyRun.Choice("--weights", k, new Dictionary<string, StudyCatalog.Entry>
            {
                ["uniform"] = new("ensemble-uniform", StrategyFamily.Ensemble, c => EnsembleStrategies.Uniform(c, agg)),
                ["fitted"] = new("ensemble-fitted", StrategyFamily.Ensemble, c => EnsembleStrategies.Fitted(c, obj, agg)),
            })).ToList();
            run.Run(parse, entries);
            return 0;
        }));
        return command;
    }
}
