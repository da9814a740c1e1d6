using System.Text.Json;
using Amalgam.Bundled;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Tests.Bundled.Tasks;
using Amalgam.Tests.Cli;
using Amalgam.Training;

namespace Amalgam.Tests.Bundled;

/// <summary>One quick suite build shared by the tests of this class (data, base, experts, quality report).</summary>
public sealed class QuickSuite : IDisposable
{
    public readonly TestData.TempDir Tmp = new();
    public string Dir => Tmp["suite"];

    public sealed class SilentProgress : ISuiteBuildProgress
    {
        public void Stage(string message) { }
        public IProgress<TrainingStep> Training(string name, int steps) => new Progress<TrainingStep>();
    }

    public QuickSuite() => SuiteBuilder.Build(Dir, SuiteBuildOptions.Quick with { WordListPath = FakeWords.WriteFile(Tmp, 600) }, new SilentProgress());

    public void Dispose() => Tmp.Dispose();
}

public class SuiteBuildTests(QuickSuite quick) : IClassFixture<QuickSuite>
{
    [Fact]
    public void The_built_suite_loads_and_every_expert_is_a_PEFT_adapter_of_its_base()
    {
        var suite = Suite.Load(quick.Dir);
        Assert.Equal(12, suite.HeldIn.Count());
        Assert.Equal(3, suite.HeldOut.Count());
        Assert.True(suite.Tasks.Select(t => t.Family).Distinct().Count() >= 3);
        using var model = CheckpointLoader.Load(suite.BasePath);
        foreach (var task in suite.HeldIn)
        {
            using var adapter = LoraAdapter.Load(task.ExpertPath!, model); // validates against the base
            Assert.Equal(2, adapter.Config.R);
            Assert.True(File.Exists(Path.Combine(task.ExpertPath!, TrainingLogFile.Name)));
        }
        Assert.True(File.Exists(Path.Combine(suite.BasePath, "tokenizer.amalgam.json")));
        Assert.Empty(Directory.GetDirectories(quick.Tmp.Path).Where(d => Path.GetFileName(d).StartsWith('.'))); // no staging left
    }

    [Fact]
    public void The_quality_report_covers_every_task_in_each_condition()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(quick.Dir, "quality.json")));
        var root = doc.RootElement;
        Assert.Equal(15, root.GetProperty("base").EnumerateObject().Count());
        Assert.Equal(12, root.GetProperty("expert").EnumerateObject().Count());
        Assert.Equal(15, root.GetProperty("uniform_average").EnumerateObject().Count());
        Assert.All(root.GetProperty("base").EnumerateObject(), p => Assert.InRange(p.Value.GetDouble(), 0, 1));
        Assert.Contains("| reverse_word | letters | no |", File.ReadAllText(Path.Combine(quick.Dir, "README.md")));
    }

    [Fact]
    public void Train_lora_then_eval_through_the_CLI_writes_scores()
    {
        using var tmp = new TestData.TempDir();
        var train = CliRunner.Run("train", "lora", "--suite", quick.Dir, "--task", "first_letter", "--out", tmp["expert"], "--steps", "3", "--batch-size", "4", "--rank", "2");
        Assert.True(train.ExitCode == 0, train.Stderr);
        Assert.True(File.Exists(Path.Combine(tmp["expert"], LoraAdapter.WeightsFile)));
        var eval = CliRunner.Run("eval", "--suite", quick.Dir, "--adapter", tmp["expert"], "--tasks", "first_letter,larger_number_choice", "--out", tmp["scores.json"]);
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        using var doc = JsonDocument.Parse(File.ReadAllText(tmp["scores.json"]));
        var scores = doc.RootElement.GetProperty("scores");
        Assert.Equal(["first_letter", "larger_number_choice"], scores.EnumerateObject().Select(p => p.Name));
        Assert.All(scores.EnumerateObject(), p => Assert.InRange(p.Value.GetDouble(), 0, 1));
        Assert.Equal(8, doc.RootElement.GetProperty("counts").GetProperty("first_letter").GetInt32());
    }

    [Fact]
    public void The_instruct_variant_instruction_tunes_the_base_and_keeps_both_logs()
    {
        Assert.Equal(SuiteVariant.Instruct, new SuiteBuildOptions().Variant); // what suite/ holds (suite/scratch/ the other)
        Assert.Equal(SuiteVariant.Instruct, SuiteBuildOptions.Quick.Variant);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(quick.Dir, "quality.json")));
        Assert.Equal("instruct", doc.RootElement.GetProperty("variant").GetString());
        Assert.True(doc.RootElement.GetProperty("stage_seconds").TryGetProperty("instruction", out _));
        var suite = Suite.Load(quick.Dir);
        using var log = JsonDocument.Parse(File.ReadAllText(Path.Combine(suite.BasePath, TrainingLogFile.Name)));
        Assert.Equal(SuiteBuildOptions.Quick.Instruction.Steps, log.RootElement.GetArrayLength());
        using var pre = JsonDocument.Parse(File.ReadAllText(Path.Combine(suite.BasePath, SuiteBuilder.PretrainingLogName)));
        Assert.Equal(SuiteBuildOptions.Quick.Base.Steps, pre.RootElement.GetArrayLength());
        Assert.Contains("instruction-tuned", File.ReadAllText(Path.Combine(quick.Dir, "README.md")));
    }

    [Fact]
    public void The_instruct_variant_started_from_a_scratch_base_keeps_its_tokenizer_and_shape_and_the_same_data()
    {
        using var tmp = new TestData.TempDir();
        string words = FakeWords.WriteFile(tmp, 600);
        var silent = new QuickSuite.SilentProgress();
        SuiteBuilder.Build(tmp["scratch"], SuiteBuildOptions.Quick with { WordListPath = words, Variant = SuiteVariant.Scratch }, silent);
        SuiteBuilder.Build(tmp["instruct"], SuiteBuildOptions.Quick with { WordListPath = words, PretrainedBase = tmp["scratch/base"] }, silent);

        using var scratchDoc = JsonDocument.Parse(File.ReadAllText(tmp["scratch/quality.json"]));
        Assert.Equal("scratch", scratchDoc.RootElement.GetProperty("variant").GetString());
        Assert.False(File.Exists(tmp["scratch/base/" + SuiteBuilder.PretrainingLogName]));
        Assert.False(File.Exists(tmp["instruct/base/" + SuiteBuilder.PretrainingLogName])); // reused: its log stays with the scratch base
        Assert.Equal(File.ReadAllText(tmp["scratch/base/tokenizer.amalgam.json"]), File.ReadAllText(tmp["instruct/base/tokenizer.amalgam.json"]));
        Assert.Equal(File.ReadAllText(tmp["scratch/base/config.json"]), File.ReadAllText(tmp["instruct/base/config.json"]));
        foreach (var file in Directory.GetFiles(tmp["scratch/data"], "*.jsonl", SearchOption.AllDirectories))
            Assert.Equal(File.ReadAllText(file), File.ReadAllText(Path.Combine(tmp["instruct/data"], Path.GetRelativePath(tmp["scratch/data"], file))));
        using var a = CheckpointLoader.Load(tmp["scratch/base"]);
        using var b = CheckpointLoader.Load(tmp["instruct/base"]);
        var pa = a.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.All(b.named_parameters(), p => Assert.False(p.parameter.allclose(pa[p.name], 0, 0), $"{p.name} was not trained")); // every weight moved

        // Words of five letters only make another tokenizer, another hidden size another shape: both refused, nothing written.
        var fewLetters = new Random(3);
        File.WriteAllLines(tmp["abcde.txt"], Enumerable.Range(0, 4000).Select(_ => new string([.. Enumerable.Range(0, fewLetters.Next(3, 8)).Select(_ => "abcde"[fewLetters.Next(5)])])).Distinct());
        var e = Assert.Throws<InvalidDataException>(() => SuiteBuilder.Build(tmp["refused"],
            SuiteBuildOptions.Quick with { WordListPath = tmp["abcde.txt"], PretrainedBase = tmp["scratch/base"] }, silent));
        Assert.Contains("tokenizer.amalgam.json: not this suite's tokenizer", e.Message);
        var shape = Assert.Throws<InvalidDataException>(() => SuiteBuilder.Build(tmp["refused"],
            SuiteBuildOptions.Quick with { WordListPath = words, HiddenSize = 16, PretrainedBase = tmp["scratch/base"] }, silent));
        Assert.Contains("config.json: not the configured base shape (hidden 16,", shape.Message);
        Assert.False(Directory.Exists(tmp["refused"]));
    }

    [Fact]
    public void Experts_trained_at_the_same_time_equal_experts_trained_one_after_the_other()
    {
        using var tmp = new TestData.TempDir();
        SuiteBuilder.Build(tmp["jobs"], SuiteBuildOptions.Quick with { WordListPath = FakeWords.WriteFile(tmp, 600), ExpertJobs = 4 }, new QuickSuite.SilentProgress());
        foreach (var task in Suite.Load(quick.Dir).HeldIn)
            Assert.Equal(File.ReadAllBytes(Path.Combine(task.ExpertPath!, LoraAdapter.WeightsFile)),
                File.ReadAllBytes(Path.Combine(tmp["jobs"], "experts", task.Name, LoraAdapter.WeightsFile)));
    }

    [Fact]
    public void Eval_refuses_an_unknown_task_or_split_in_one_line()
    {
        var r = CliRunner.Run("eval", "--suite", quick.Dir, "--tasks", "nope");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("no task 'nope'", r.Stderr);
        var s = CliRunner.Run("eval", "--suite", quick.Dir, "--split", "dev");
        Assert.Contains("--split", s.Stderr);
    }
}
