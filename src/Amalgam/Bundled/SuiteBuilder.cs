using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Amalgam.Evaluation;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Tokenizers;
using Amalgam.Bundled.Tasks;
using Amalgam.Tensors;
using Amalgam.Training;

namespace Amalgam.Bundled;

/// <summary>Progress of a suite build: a stage message, or a training step of the named model.</summary>
public interface ISuiteBuildProgress
{
    void Stage(string message);
    IProgress<TrainingStep> Training(string name, int steps);
}

/// <summary>
/// Regenerates the bundled suite from seeds: task data, a char-level tokenizer, a tiny Llama base trained from
/// scratch, one LoRA expert per held-in task, and a measured quality report (quality.json + README.md). Everything
/// is built in a staging folder that replaces the output folder only when complete.
/// </summary>
public static class SuiteBuilder
{
    public static void Build(string outDir, SuiteBuildOptions options, ISuiteBuildProgress progress)
    {
        var clock = Stopwatch.StartNew();
        var words = WordList.Load(options.WordListPath);
        AtomicDirectory.Write(outDir, dir =>
        {
            progress.Stage("generating task data");
            var suite = SuiteDataBuilder.Build(dir, options.Seed, words, options.TrainExamples, options.ValidationExamples, options.TestExamples);
            var corpus = PretrainingCorpus.Generate(words.Words, options.CorpusSize, options.Seed, suite.PromptFormat);

            var texts = corpus.SelectMany(c => new[] { c.Prompt, c.Answer }).Concat(suite.Tasks.SelectMany(t => Suite.Splits.SelectMany(s => suite.LoadSplit(t, s))
                .SelectMany(e => new[] { suite.Prompt(e), e.Target }.Concat(e.Options ?? []))));
            var tokenizer = AmalgamTokenizer.CreateCharLevel(texts);
            var times = new Dictionary<string, double>();
            IReadOnlyList<TrainingStep>? pretrainingLog = null;

            var config = BaseConfig(options, tokenizer);
            string? reused = options.Variant == SuiteVariant.Instruct ? options.TunedBase ?? options.PretrainedBase : null;
            using var model = reused is not null
                ? LoadPretrained(reused, config, tokenizer)
                : TrainFromScratch(config, corpus, tokenizer, options, progress, out pretrainingLog);
            times["base"] = clock.Elapsed.TotalSeconds;
            var log = pretrainingLog;
            if (options.Variant == SuiteVariant.Instruct && options.TunedBase is null)
            {
                var mixture = InstructionMixture.Build(suite, words.Words, options.InstructionExamplesPerTask, options.InstructionTemplate,
                    options.InstructionReplay, options.Seed);
                progress.Stage($"instruction-tuning the base on {mixture.Count} texts");
                var started = clock.Elapsed.TotalSeconds;
                log = BaseTrainer.Continue(model, mixture.Select(m => ExampleSequences.Question(tokenizer, m.Prompt, m.Answer)).ToList(),
                    options.Instruction with { Seed = StableSeed.Of(options.Seed, "instruction") }, tokenizer.PadId ?? 0,
                    progress.Training("instruction", options.Instruction.Steps));
                times["instruction"] = clock.Elapsed.TotalSeconds - started;
            }
            CheckpointWriter.Save(model, suite.BasePath, staging =>
            {
                tokenizer.Save(Path.Combine(staging, AmalgamTokenizer.FileName));
                if (log is not null) TrainingLogFile.Write(Path.Combine(staging, TrainingLogFile.Name), log);
                if (options.Variant == SuiteVariant.Instruct && pretrainingLog is not null)
                    TrainingLogFile.Write(Path.Combine(staging, PretrainingLogName), pretrainingLog);
                if (options.TunedBase is { } tuned) // reused as is: its logs come with it
                    foreach (var name in new[] { TrainingLogFile.Name, PretrainingLogName })
                        if (File.Exists(Path.Combine(tuned, name))) File.Copy(Path.Combine(tuned, name), Path.Combine(staging, name));
            });

            var experts = new ConcurrentDictionary<string, LoraAdapter>();
            try
            {
                void TrainExpert(CausalLM on, TaskDefinition task)
                {
                    progress.Stage($"training the expert for {task.Name}");
                    var started = clock.Elapsed.TotalSeconds;
                    var data = suite.LoadSplit(task, Suite.Train).Select(e => ExampleSequences.Of(tokenizer, suite, e)).ToList();
                    var lora = JsonSerializer.Deserialize<LoraConfig>($$"""{"r": {{options.LoraRank}}, "lora_alpha": {{options.LoraAlpha}}, "target_modules": "all-linear", "base_model_name_or_path": "base"}""")!;
                    var run = LoraTrainer.Train(on, lora, task.Name, data, options.Expert with { Seed = StableSeed.Of(options.Seed, task.Name) },
                        tokenizer.PadId ?? 0, progress.Training(task.Name, options.Expert.Steps));
                    experts[task.Name] = run.Adapter;
                    run.Adapter.Save(task.ExpertPath!);
                    TrainingLogFile.Write(Path.Combine(task.ExpertPath!, TrainingLogFile.Name), run.Log);
                    lock (times) times[task.Name] = clock.Elapsed.TotalSeconds - started;
                }

                if (options.ExpertJobs <= 1)
                    foreach (var task in suite.HeldIn) TrainExpert(model, task);
                else
                {
                    // Each job trains on its own copy of the saved base (LoRA factors attach to a model's layers).
                    try
                    {
                        Parallel.ForEach(suite.HeldIn, new ParallelOptions { MaxDegreeOfParallelism = options.ExpertJobs }, task =>
                        {
                            using var copy = CheckpointLoader.Load(suite.BasePath, TorchSharp.torch.ScalarType.Float32);
                            TrainExpert(copy, task);
                        });
                    }
                    catch (AggregateException e) when (e.InnerExceptions.Count >= 1)
                    {
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
                    }
                }

                progress.Stage("measuring quality");
                var report = QualityReport.Measure(model, tokenizer, suite, experts);
                report = report with { BuildSeconds = clock.Elapsed.TotalSeconds, StageSeconds = times, Options = options };
                report.Write(dir);
            }
            finally
            {
                foreach (var e in experts.Values) e.Dispose();
            }
        });
    }

    /// <summary>The instruct base's log of its from-scratch stage (training_log.json holds the instruction stage).</summary>
    public const string PretrainingLogName = "pretraining_log.json";

    static CausalLM TrainFromScratch(DecoderConfig config, IReadOnlyList<(string Prompt, string Answer)> corpus, AmalgamTokenizer tokenizer,
        SuiteBuildOptions options, ISuiteBuildProgress progress, out IReadOnlyList<TrainingStep>? log)
    {
        progress.Stage($"training the base model on {corpus.Count} texts");
        var sequences = corpus.Select(c => ExampleSequences.Question(tokenizer, c.Prompt, c.Answer)).ToList();
        var run = BaseTrainer.Train(config, sequences, options.Base, tokenizer.PadId ?? 0, progress.Training("base", options.Base.Steps));
        log = run.Log;
        return run.Model;
    }

    /// <summary>
    /// A from-scratch base built earlier by this recipe: its tokenizer must be the one this build makes (same
    /// characters, same order) and its shape the configured one, or the experts and data would not fit it.
    /// </summary>
    static CausalLM LoadPretrained(string dir, DecoderConfig config, AmalgamTokenizer tokenizer)
    {
        string file = Path.Combine(dir, AmalgamTokenizer.FileName);
        if (!File.Exists(file)) throw new InvalidDataException($"{file}: not found (--base-from needs a base built by `amalgam suite build --variant scratch`)");
        var theirs = AmalgamTokenizer.Load(file);
        if (theirs.VocabSize != tokenizer.VocabSize || Enumerable.Range(0, tokenizer.VocabSize).Any(i => theirs.Decode([i], false) != tokenizer.Decode([i], false)))
            throw new InvalidDataException($"{file}: not this suite's tokenizer (built from another word list or seed?)");
        var model = CheckpointLoader.Load(dir, TorchSharp.torch.ScalarType.Float32);
        var c = model.Config;
        if (c.HiddenSize != config.HiddenSize || c.NumHiddenLayers != config.NumHiddenLayers || c.IntermediateSize != config.IntermediateSize ||
            c.NumAttentionHeads != config.NumAttentionHeads || c.NumKeyValueHeads != config.NumKeyValueHeads || c.VocabSize != config.VocabSize)
        {
            model.Dispose();
            throw new InvalidDataException($"{Path.Combine(dir, "config.json")}: not the configured base shape (hidden {config.HiddenSize}, {config.NumHiddenLayers} layers, intermediate {config.IntermediateSize})");
        }
        return model;
    }

    static DecoderConfig BaseConfig(SuiteBuildOptions o, ITextTokenizer tokenizer) =>
        TinyLlamaConfig.Create(tokenizer, o.HiddenSize, o.Layers, o.Heads, o.KeyValueHeads, o.IntermediateSize);
}
