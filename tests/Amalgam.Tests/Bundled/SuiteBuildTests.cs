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

    sealed class Silent : ISuiteBuildProgress
    {
        public void Stage(string message) { }
        public IProgress<TrainingStep> Training(string name, int steps) => new Progress<TrainingStep>();
    }

    public QuickSuite() => SuiteBuilder.Build(Dir, SuiteBuildOptions.Quick with { WordListPath = FakeWords.WriteFile(Tmp, 600) }, new Silent());

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
    public void Eval_refuses_an_unknown_task_or_split_in_one_line()
    {
        var r = CliRunner.Run("eval", "--suite", quick.Dir, "--tasks", "nope");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("no task 'nope'", r.Stderr);
        var s = CliRunner.Run("eval", "--suite", quick.Dir, "--split", "dev");
        Assert.Contains("--split", s.Stderr);
    }
}
