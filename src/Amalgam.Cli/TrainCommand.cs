using System.CommandLine;
using System.Text.Json;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Tokenizers;
using Amalgam.Bundled;
using Amalgam.Training;

namespace Amalgam.Cli;

/// <summary><c>amalgam train lora</c> and <c>amalgam train base</c>.</summary>
public static class TrainCommand
{
    sealed class Optimisation
    {
        public readonly Option<int> Steps = new("--steps") { Description = "Optimisation steps.", DefaultValueFactory = _ => 600 };
        public readonly Option<int> BatchSize = new("--batch-size") { Description = "Sequences per step.", DefaultValueFactory = _ => 32 };
        public readonly Option<double> LearningRate = new("--lr") { Description = "Peak AdamW learning rate (linear warm-up, cosine decay to 10 %).", DefaultValueFactory = _ => 5e-3 };
        public readonly Option<int?> Warmup = new("--warmup") { Description = "Warm-up steps (default: min(20, steps / 10))." };
        public readonly Option<double> WeightDecay = new("--weight-decay") { Description = "AdamW weight decay.", DefaultValueFactory = _ => 0.0 };
        public readonly Option<double> Clip = new("--clip") { Description = "Global gradient-norm clipping.", DefaultValueFactory = _ => 1.0 };
        public readonly Option<int> Seed = new("--seed") { Description = "Seed for initialisation and batch order.", DefaultValueFactory = _ => 0 };

        public void AddTo(Command c) { foreach (var o in new Option[] { Steps, BatchSize, LearningRate, Warmup, WeightDecay, Clip, Seed }) c.Options.Add(o); }

        public TrainingOptions Read(ParseResult p) => new()
        {
            Steps = p.GetValue(Steps), BatchSize = p.GetValue(BatchSize), LearningRate = p.GetValue(LearningRate), WarmupSteps = p.GetValue(Warmup) ?? Math.Min(20, p.GetValue(Steps) / 10),
            WeightDecay = p.GetValue(WeightDecay), ClipNorm = p.GetValue(Clip), Seed = p.GetValue(Seed),
        };
    }

    public static Command Create()
    {
        var train = new Command("train", "Train a LoRA expert on a suite task, or a tiny base model from scratch.");
        train.Subcommands.Add(Lora());
        train.Subcommands.Add(Base());
        return train;
    }

    static Command Lora()
    {
        var baseDir = new Option<string?>("--base") { Description = "Base checkpoint folder; default: the suite's base." };
        var suiteDir = new Option<string>("--suite") { Description = "Suite folder (suite.yaml).", Required = true };
        var task = new Option<string>("--task") { Description = "Task whose train split to learn.", Required = true };
        var output = new Option<string>("--out") { Description = "Adapter folder to write.", Required = true };
        var rank = new Option<int>("--rank") { Description = "LoRA rank r.", DefaultValueFactory = _ => 8 };
        var alpha = new Option<double>("--alpha") { Description = "lora_alpha (scale alpha / r).", DefaultValueFactory = _ => 16 };
        var targets = new Option<string>("--targets") { Description = "target_modules: all-linear, or comma-separated module names.", DefaultValueFactory = _ => "all-linear" };
        var opt = new Optimisation();
        var command = new Command("lora", "Train a PEFT LoRA adapter on a suite task's train split (loss on target tokens only).");
        foreach (var o in new Option[] { baseDir, suiteDir, task, output, rank, alpha, targets }) command.Options.Add(o);
        opt.AddTo(command);
        command.SetAction(CliErrors.Guard(parse =>
        {
            var suite = Suite.Load(parse.GetValue(suiteDir)!);
            var t = suite.Task(parse.GetValue(task)!);
            string modelDir = parse.GetValue(baseDir) ?? suite.BasePath;
            Tensors.OutputGuard.Check(parse.GetValue(output)!, [suite.Directory, modelDir]);
            var tokenizer = TokenizerLoader.Load(modelDir);
            using var model = CheckpointLoader.Load(modelDir);
            string targetJson = parse.GetValue(targets) == LoraTargets.AllLinear
                ? "\"all-linear\"" : JsonSerializer.Serialize(parse.GetValue(targets)!.Split(',', StringSplitOptions.TrimEntries));
            var config = JsonSerializer.Deserialize<LoraConfig>($$"""{"r": {{parse.GetValue(rank)}}, "lora_alpha": {{parse.GetValue(alpha)}}, "target_modules": {{targetJson}}, "base_model_name_or_path": {{JsonSerializer.Serialize(modelDir)}}}""")!;
            var data = suite.LoadSplit(t, Suite.Train).Select(e => ExampleSequences.Of(tokenizer, suite, e, model.Config)).ToList();
            var options = opt.Read(parse);
            var run = ProgressDisplay.Run(p => LoraTrainer.Train(model, config, t.Name, data, options, tokenizer.PadId ?? 0, p.Training(t.Name, options.Steps)));
            using var adapter = run.Adapter;
            string outDir = parse.GetValue(output)!;
            adapter.Save(outDir, staging => TrainingLogFile.Write(Path.Combine(staging, TrainingLogFile.Name), run.Log));
            Console.WriteLine($"wrote {outDir}: loss {run.Log[0].Loss:F4} → {run.Log[^1].Loss:F4} over {run.Log.Count} steps");
            return 0;
        }));
        return command;
    }

    static Command Base()
    {
        var corpus = new Option<string>("--corpus") { Description = "Text file, one training text per line.", Required = true };
        var output = new Option<string>("--out") { Description = "Checkpoint folder to write.", Required = true };
        var hidden = new Option<int>("--hidden") { Description = "hidden_size.", DefaultValueFactory = _ => 128 };
        var layers = new Option<int>("--layers") { Description = "num_hidden_layers.", DefaultValueFactory = _ => 4 };
        var heads = new Option<int>("--heads") { Description = "num_attention_heads.", DefaultValueFactory = _ => 4 };
        var kvHeads = new Option<int>("--kv-heads") { Description = "num_key_value_heads.", DefaultValueFactory = _ => 2 };
        var intermediate = new Option<int>("--intermediate") { Description = "intermediate_size.", DefaultValueFactory = _ => 344 };
        var opt = new Optimisation();
        var command = new Command("base", "Train a tiny Llama-architecture model from scratch (char-level tokenizer built from the corpus); writes a Hugging Face checkpoint.");
        foreach (var o in new Option[] { corpus, output, hidden, layers, heads, kvHeads, intermediate }) command.Options.Add(o);
        opt.AddTo(command);
        command.SetAction(CliErrors.Guard(parse =>
        {
            string file = parse.GetValue(corpus)!;
            if (!File.Exists(file)) throw new FileNotFoundException($"{file}: no such corpus file");
            Tensors.OutputGuard.Check(parse.GetValue(output)!, [file]);
            var texts = File.ReadAllLines(file).Where(l => l.Length > 0).Select(l => l.Replace("\\n", "\n")).ToList();
            if (texts.Count == 0) throw new InvalidDataException($"{file}: no non-empty lines");
            var tokenizer = AmalgamTokenizer.CreateCharLevel(texts);
            var config = TinyLlamaConfig.Create(tokenizer, parse.GetValue(hidden), parse.GetValue(layers), parse.GetValue(heads),
                parse.GetValue(kvHeads), parse.GetValue(intermediate));
            var data = texts.Select(t => new TokenSequence([.. tokenizer.Encode(t, addBos: true).Select(i => (long)i), tokenizer.EosId!.Value], 1)).ToList();
            var options = opt.Read(parse);
            var run = ProgressDisplay.Run(p => BaseTrainer.Train(config, data, options, tokenizer.PadId ?? 0, p.Training("base", options.Steps)));
            using var model = run.Model;
            string outDir = parse.GetValue(output)!;
            CheckpointWriter.Save(model, outDir, staging =>
            {
                tokenizer.Save(Path.Combine(staging, AmalgamTokenizer.FileName));
                TrainingLogFile.Write(Path.Combine(staging, TrainingLogFile.Name), run.Log);
            });
            Console.WriteLine($"wrote {outDir}: loss {run.Log[0].Loss:F4} → {run.Log[^1].Loss:F4} over {run.Log.Count} steps");
            return 0;
        }));
        return command;
    }
}
