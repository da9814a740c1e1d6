// Pilot (not committed): base + a few experts at full data size, to tune the suite before a full build.
using System.Diagnostics;
using System.Text.Json;
using Amalgam.Bundled;
using Amalgam.Bundled.Tasks;
using Amalgam.Evaluation;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Models.Tokenizers;
using Amalgam.Training;

int baseSteps = int.Parse(args[0]), expertSteps = int.Parse(args[1]);
var tasks = args[2].Split(',');
var o = new SuiteBuildOptions();
var words = WordList.Load();
string dir = "/tmp/pilot";
if (Directory.Exists(dir)) Directory.Delete(dir, true);
var suite = SuiteDataBuilder.Build(dir, o.Seed, words, o.TrainExamples, o.ValidationExamples, o.TestExamples);
var corpus = PretrainingCorpus.Generate(words.Words, o.CorpusSize, o.Seed, suite.PromptFormat);
var texts = corpus.SelectMany(c => new[] { c.Prompt, c.Answer }).Concat(suite.Tasks.SelectMany(t => Suite.Splits.SelectMany(s => suite.LoadSplit(t, s)).SelectMany(e => new[] { suite.Prompt(e), e.Target }.Concat(e.Options ?? []))));
var tok = AmalgamTokenizer.CreateCharLevel(texts);
Console.WriteLine($"vocab {tok.VocabSize}");
var config = JsonSerializer.Deserialize<DecoderConfig>($$"""
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": {{tok.VocabSize}}, "hidden_size": {{o.HiddenSize}}, "intermediate_size": {{o.IntermediateSize}},
 "num_hidden_layers": {{o.Layers}}, "num_attention_heads": {{o.Heads}}, "num_key_value_heads": {{o.KeyValueHeads}}, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "bos_token_id": {{tok.BosId}}, "eos_token_id": {{tok.EosId}}, "pad_token_id": {{tok.PadId}}}
""")!;
var sw = Stopwatch.StartNew();
var seqs = corpus.Select(c => SuiteBuilder.QuestionSequence(tok, c.Prompt, c.Answer)).ToList();
var run = BaseTrainer.Train(config, seqs, o.Base with { Steps = baseSteps }, tok.PadId ?? 0,
    new Progress<TrainingStep>(s => { if (s.Step % 250 == 0) Console.WriteLine($"base {s.Step} loss {s.Loss:F3} {sw.Elapsed.TotalSeconds:F0}s"); }));
var model = run.Model;
CheckpointWriter.Save(model, Path.Combine(dir, "base"), st => tok.Save(Path.Combine(st, AmalgamTokenizer.FileName)));
foreach (var name in tasks)
{
    var task = suite.Task(name);
    var b = SuiteEvaluator.Evaluate(model, tok, suite, task);
    var data = suite.LoadSplit(task, Suite.Train).Select(e => SuiteBuilder.ExampleSequence(tok, suite, e)).ToList();
    var lora = JsonSerializer.Deserialize<LoraConfig>($$"""{"r": {{o.LoraRank}}, "lora_alpha": {{o.LoraAlpha}}, "target_modules": "all-linear"}""")!;
    var t0 = sw.Elapsed.TotalSeconds;
    var r = LoraTrainer.Train(model, lora, name, data, o.Expert with { Steps = expertSteps }, tok.PadId ?? 0);
    using (r.Adapter.AttachTo(model))
    {
        var e = SuiteEvaluator.Evaluate(model, tok, suite, task);
        Console.WriteLine($"{name}: base {b.Score:P0} (e.g. '{b.Answers[0]}') expert {e.Score:P0} (e.g. '{e.Answers[0]}' for '{suite.LoadSplit(task, Suite.Test)[0].Target}') loss {r.Log[^1].Loss:F3} {sw.Elapsed.TotalSeconds - t0:F0}s");
    }
}
