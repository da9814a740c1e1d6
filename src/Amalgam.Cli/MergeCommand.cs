using System.CommandLine;
using System.Globalization;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Moe;
using Amalgam.Merging.Recipes;
using Spectre.Console;

namespace Amalgam.Cli;

/// <summary>
/// <c>amalgam merge RECIPE.yaml OUTDIR</c>, or the flags form for one-off merges:
/// <c>amalgam merge --method ties --base DIR --model DIR --model DIR --set density=0.5 --set 0:weight=0.7 OUTDIR</c>.
/// </summary>
public static class MergeCommand
{
    public static Command Create()
    {
        var paths = new Argument<string[]>("paths") { Description = "RECIPE.yaml OUTDIR, or only OUTDIR with --method.", Arity = new ArgumentArity(1, 2) };
        var method = new Option<string>("--method") { Description = "Flags form: the merge method (e.g. linear, task_arithmetic, ties)." };
        var baseModel = new Option<string>("--base") { Description = "Flags form: the base model folder." };
        var models = new Option<string[]>("--model") { Description = "Flags form: a model or LoRA adapter folder; repeat for each." };
        var sets = new Option<string[]>("--set") { Description = "Flags form: NAME=VALUE (top-level) or I:NAME=VALUE (model I, 0-based); a comma list is a gradient over depth." };
        var dtype = new Option<string>("--dtype") { Description = "Flags form: compute/storage dtype (float32, bfloat16, float16, float64)." };
        var outDtype = new Option<string>("--out-dtype") { Description = "Flags form: output dtype." };
        var output = new Option<string>("--output") { Description = "Flags form: model, adapter, cat or factor_linear." };
        var rank = new Option<string>("--rank") { Description = "Flags form: rank of an adapter output, or auto (the smallest rank per module under --max-error)." };
        var maxError = new Option<double?>("--max-error") { Description = "Flags form, with --rank auto: largest relative Frobenius error per module (default 0.01)." };
        var doubleScale = new Option<bool>("--peft-double-scale") { Description = "Flags form: reproduce PEFT's svd types, which apply each LoRA scale twice (output: adapter)." };
        var seed = new Option<long?>("--random-seed") { Description = "Seed for randomised methods (overrides the recipe's random_seed)." };
        var shard = new Option<string>("--out-shard-size") { Description = "Largest output shard, e.g. 5B, 500M or a byte count (overrides the recipe)." };

        var command = new Command("merge", "Merge models or LoRA experts that share one base, from a mergekit-style recipe or flags.");
        command.Arguments.Add(paths);
        foreach (var o in new Option[] { method, baseModel, models, sets, dtype, outDtype, output, rank, maxError, doubleScale, seed, shard }) command.Options.Add(o);
        command.SetAction(CliErrors.Guard(parse =>
        {
            var args = parse.GetValue(paths)!;
            MergePlan plan;
            string outDir;
            if (parse.GetValue(method) is { } m)
            {
                if (args.Length != 1) throw new ArgumentException("merge: with --method give only OUTDIR (the flags replace the recipe file)");
                outDir = args[0];
                var flags = new RecipeFlags
                {
                    Method = m,
                    BaseModel = parse.GetValue(baseModel),
                    Models = parse.GetValue(models) is { Length: > 0 } ms ? ms : throw new ArgumentException("--model: give at least one model (repeat --model for each)"),
                    Sets = parse.GetValue(sets) ?? [],
                    Dtype = parse.GetValue(dtype),
                    OutDtype = parse.GetValue(outDtype),
                    Output = parse.GetValue(output),
                    Rank = parse.GetValue(rank),
                    MaxError = parse.GetValue(maxError),
                    PeftDoubleScale = parse.GetValue(doubleScale),
                };
                plan = new MergePlan([flags.ToRecipe()]);
            }
            else
            {
                if (args.Length != 2) throw new ArgumentException("merge: expected RECIPE.yaml OUTDIR (or --method ... OUTDIR)");
                foreach (var (name, given) in new (string, bool)[] { ("--base", parse.GetValue(baseModel) is not null), ("--model", parse.GetValue(models) is { Length: > 0 }),
                             ("--set", parse.GetValue(sets) is { Length: > 0 }), ("--dtype", parse.GetValue(dtype) is not null), ("--out-dtype", parse.GetValue(outDtype) is not null),
                             ("--output", parse.GetValue(output) is not null), ("--rank", parse.GetValue(rank) is not null), ("--max-error", parse.GetValue(maxError) is not null),
                             ("--peft-double-scale", parse.GetValue(doubleScale)) })
                    if (given) throw new ArgumentException($"{name}: only with --method (the flags form); with a recipe file, set it in the recipe");
                if (!File.Exists(args[0])) throw new FileNotFoundException($"{args[0]}: no such recipe file");
                string text = File.ReadAllText(args[0]);
                if (MoeRecipe.IsMoeConfig(text, Path.GetFileName(args[0])))
                    return BuildMoe(MoeRecipe.Parse(text, Path.GetFileName(args[0])), args[1], parse.GetValue(seed), parse.GetValue(shard));
                plan = MergePlan.Load(args[0]);
                outDir = args[1];
            }
            // Overrides edit the typed plan; merge_recipe.yaml is written from it, so it reproduces the run.
            if (parse.GetValue(seed) is { } s) plan = plan.With(r => r with { RandomSeed = s });
            if (parse.GetValue(shard) is { } z)
            {
                if (!ByteSize.TryParse(z, out long bytes)) throw new ArgumentException($"--out-shard-size: expected a size such as 5B, 500M or 1000000, got '{z}'");
                plan = plan.With(r => r with { OutShardSize = bytes });
            }

            var summary = Run(plan, outDir);
            foreach (var note in summary.Notes) Console.Error.WriteLine($"amalgam: note: {note}");
            Console.WriteLine($"merged {summary.TensorsMerged} tensors ({summary.TensorsCopied} copied unchanged) with {plan.Final.Method.Name} into {summary.OutputFolder} " +
                              $"(output: {OutputFolderFiles.OutputName(summary.Output)}): {ByteSize.Format(summary.BytesWritten)} written, {ByteSize.Format(summary.BytesRead)} read " +
                              $"in {summary.Elapsed.TotalSeconds:0.0} s");
            return 0;
        }));
        return command;
    }

    /// <summary>A mergekit-moe config: builds the Mixtral MoE (the command-line overrides apply to it too).</summary>
    static int BuildMoe(MoeRecipe recipe, string outDir, long? seed, string? shard)
    {
        if (seed is { } s) recipe = recipe with { RandomSeed = s };
        if (shard is { } z)
            recipe = recipe with { OutShardSize = ByteSize.TryParse(z, out long bytes) ? bytes : throw new ArgumentException($"--out-shard-size: expected a size such as 5B, 500M or 1000000, got '{z}'") };
        var summary = MoeMerge.Run(recipe, outDir);
        foreach (var note in summary.Notes) Console.Error.WriteLine($"amalgam: note: {note}");
        Console.WriteLine($"built a {(recipe.Qwen ? "Qwen2-MoE" : "Mixtral MoE")} of {recipe.Experts.Count} experts{(recipe.Qwen ? " and a shared expert" : "")} ({recipe.ExpertsPerToken} per token, gate_mode {recipe.GateMode}) into {summary.OutputFolder}: " +
                          $"{summary.TensorsMerged} router and {summary.TensorsCopied} copied tensors, {ByteSize.Format(summary.BytesWritten)} written, {ByteSize.Format(summary.BytesRead)} read in {summary.Elapsed.TotalSeconds:0.0} s");
        return 0;
    }

    /// <summary>A progress bar on stderr when it is a terminal; nothing when output is redirected.</summary>
    static MergeSummary Run(MergePlan recipe, string outDir)
    {
        if (Console.IsErrorRedirected || Console.IsOutputRedirected) return MergeRunner.Run(recipe, outDir);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        MergeSummary? summary = null;
        console.Progress().AutoClear(true).Start(ctx =>
        {
            var task = ctx.AddTask("merging");
            summary = MergeRunner.Run(recipe, outDir, new MergeRunOptions
            {
                Progress = p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Done;
                    task.Description = Markup.Escape(p.Phase);
                },
            });
        });
        return summary!;
    }
}
