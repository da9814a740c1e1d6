using Amalgam.Predictors;
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Amalgam.Evaluation;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Strategies.Saved;
using Amalgam.Tokenizers;
using Spectre.Console;

namespace Amalgam.Cli;

/// <summary><c>amalgam eval</c>: scores a model (the suite's base by default), with adapters, on a suite's tasks.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var suiteDir = new Option<string>("--suite") { Description = "Suite folder (suite.yaml).", Required = true };
        var model = new Option<string?>("--model") { Description = "Checkpoint folder; default: the suite's base." };
        var adapters = new Option<string[]>("--adapter") { Description = "PEFT adapter folder to attach; repeat to stack." };
        var tasks = new Option<string?>("--tasks") { Description = "Comma-separated task names; default: all." };
        var split = new Option<string>("--split") { Description = "train, validation or test.", DefaultValueFactory = _ => Suite.Test };
        var limit = new Option<int?>("--limit") { Description = "Score only the first N examples of each task." };
        var strategy = new Option<string?>("--strategy") { Description = "A saved strategy folder (amalgam study --export, or --save of route, fit, select, ensemble) to score instead of --model/--adapter." };
        var truncate = TruncateOption.Create();
        var output = new Option<string?>("--out") { Description = "Write {\"scores\": {task: score}, ...} to this JSON file." };
        var command = new Command("eval", "Score a model on a suite: exact match after greedy decoding, or option accuracy.");
        CliErrors.Positive(limit);
        foreach (var o in new Option[] { suiteDir, model, adapters, tasks, split, limit, strategy, truncate, output }) command.Options.Add(o);
        command.SetAction(CliErrors.Guard(parse =>
        {
            var suite = Suite.Load(parse.GetValue(suiteDir)!);
            string splitName = parse.GetValue(split)!;
            if (!Suite.Splits.Contains(splitName)) throw new ArgumentException($"--split: '{splitName}' is not one of {string.Join(", ", Suite.Splits)}");
            var selected = parse.GetValue(tasks) is { } names ? names.Split(',', StringSplitOptions.TrimEntries).Select(suite.Task).ToList() : suite.Tasks.ToList();
            if (parse.GetValue(strategy) is { } strategyDir)
            {
                if (parse.GetValue(model) is not null || (parse.GetValue(adapters) ?? []).Length > 0)
                    throw new ArgumentException("--strategy: give either a strategy or --model/--adapter, not both");
                using var saved = StrategyFolder.Load(strategyDir);
                var clock = Stopwatch.StartNew();
                var predictor = saved.Predictor;
                var scored = SuiteEvaluator.EvaluateAll(_ => predictor, saved.Pool.Tokenizer, suite, selected, splitName, parse.GetValue(limit), TruncateOption.Get(parse, truncate));
                Report(scored, splitName, clock.Elapsed.TotalSeconds, parse.GetValue(output), new { strategy = Path.GetFullPath(strategyDir), name = saved.Strategy.Name });
                return 0;
            }
            string modelDir = parse.GetValue(model) ?? suite.BasePath;
            var tokenizer = TokenizerLoader.Load(modelDir);
            using var m = CheckpointLoader.Load(modelDir);
            var loaded = new List<LoraAdapter>();
            try
            {
                foreach (var dir in parse.GetValue(adapters) ?? [])
                {
                    var adapter = LoraAdapter.Load(dir, m);
                    adapter.AttachTo(m);
                    loaded.Add(adapter);
                }
                var clock = Stopwatch.StartNew();
                var predictor = new ModelPredictor(m);
                var results = SuiteEvaluator.EvaluateAll(_ => predictor, tokenizer, suite, selected, splitName, parse.GetValue(limit), TruncateOption.Get(parse, truncate));
                Report(results, splitName, clock.Elapsed.TotalSeconds, parse.GetValue(output),
                    new { model = Path.GetFullPath(modelDir), adapters = (parse.GetValue(adapters) ?? []).Select(Path.GetFullPath).ToArray() });
            }
            finally
            {
                foreach (var a in loaded) a.Dispose();
            }
            return 0;
        }));
        return command;
    }

    static void Report(IReadOnlyList<TaskEvaluation> results, string splitName, double seconds, string? file, object what)
    {
                var table = new Table().AddColumns("task", "family", "held out", "metric", "examples", "score");
                if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160; // Spectre assumes 80 columns otherwise
                foreach (var r in results)
                    table.AddRow(Markup.Escape(Inputs.Names.Escape(r.Task)), Markup.Escape(Inputs.Names.Escape(r.Family)), r.HeldOut ? "yes" : "no", r.Metric, r.Count.ToString(), $"{100 * r.Score:F1} %");
                table.Caption($"{splitName} split, {seconds:F1} s");
                AnsiConsole.Write(table);
                if (file is not null)
                {
                    var json = JsonSerializer.SerializeToNode(new
                    {
                        scores = results.ToDictionary(r => r.Task, r => r.Score),
                        counts = results.ToDictionary(r => r.Task, r => r.Count),
                        split = splitName,
                    })!.AsObject();
                    foreach (var (k, v) in JsonSerializer.SerializeToNode(what)!.AsObject()) json[k] = v?.DeepClone();
                    json["seconds"] = Math.Round(seconds, 2);
                    json["answers"] = JsonSerializer.SerializeToNode(results.ToDictionary(r => r.Task, r => r.Answers));
                    Tensors.AtomicFile.WriteAllText(file, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                }
    }
}
