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

            progress.Stage($"training the base model on {corpus.Count} texts");
            var config = BaseConfig(options, tokenizer);
            var sequences = corpus.Select(c => ExampleSequences.Question(tokenizer, c.Prompt, c.Answer)).ToList();
            var baseRun = BaseTrainer.Train(config, sequences, options.Base, tokenizer.PadId ?? 0, progress.Training("base", options.Base.Steps));
            using var model = baseRun.Model;
            times["base"] = clock.Elapsed.TotalSeconds;
            CheckpointWriter.Save(model, suite.BasePath, staging =>
            {
                tokenizer.Save(Path.Combine(staging, AmalgamTokenizer.FileName));
                TrainingLogFile.Write(Path.Combine(staging, TrainingLogFile.Name), baseRun.Log);
            });

            var experts = new Dictionary<string, LoraAdapter>();
            try
            {
                foreach (var task in suite.HeldIn)
                {
                    progress.Stage($"training the expert for {task.Name}");
                    var started = clock.Elapsed.TotalSeconds;
                    var data = suite.LoadSplit(task, Suite.Train).Select(e => ExampleSequences.Of(tokenizer, suite, e)).ToList();
                    var lora = JsonSerializer.Deserialize<LoraConfig>($$"""{"r": {{options.LoraRank}}, "lora_alpha": {{options.LoraAlpha}}, "target_modules": "all-linear", "base_model_name_or_path": "base"}""")!;
                    var run = LoraTrainer.Train(model, lora, task.Name, data, options.Expert with { Seed = StableSeed.Of(options.Seed, task.Name) },
                        tokenizer.PadId ?? 0, progress.Training(task.Name, options.Expert.Steps));
                    run.Adapter.Save(task.ExpertPath!);
                    TrainingLogFile.Write(Path.Combine(task.ExpertPath!, TrainingLogFile.Name), run.Log);
                    experts[task.Name] = run.Adapter;
                    times[task.Name] = clock.Elapsed.TotalSeconds - started;
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

    static DecoderConfig BaseConfig(SuiteBuildOptions o, ITextTokenizer tokenizer) =>
        TinyLlamaConfig.Create(tokenizer, o.HiddenSize, o.Layers, o.Heads, o.KeyValueHeads, o.IntermediateSize);
}
