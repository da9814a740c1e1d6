using System.Text.Json;
using Amalgam.Evaluation;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Tokenizers;

namespace Amalgam.Tests.Bundled;

/// <summary>The committed suite/ folder: it loads, its experts fit its base, and its quality claims hold.</summary>
public class BundledSuiteTests
{
    static readonly string Dir = Path.Combine(TestData.RepoRoot, "suite");

    [Fact]
    public void The_bundled_suite_loads_and_every_expert_is_a_valid_adapter_of_the_bundled_base()
    {
        var suite = Suite.Load(Dir);
        Assert.True(suite.HeldIn.Count() >= 10);
        Assert.True(suite.HeldIn.Select(t => t.Family).Distinct().Count() >= 3);
        Assert.True(suite.HeldOut.Count() >= 2);
        using var model = CheckpointLoader.Load(suite.BasePath);
        foreach (var task in suite.HeldIn)
        {
            using var adapter = LoraAdapter.Load(task.ExpertPath!, model);
            Assert.NotEmpty(adapter.Deltas);
            foreach (var split in Suite.Splits) Assert.NotEmpty(suite.LoadSplit(task, split));
        }
        long bytes = new DirectoryInfo(Dir).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
        Assert.True(bytes <= 25_000_000, $"suite/ is {bytes:N0} bytes");
    }

    /// <summary>
    /// Recomputes the figures of suite/quality.json (and so suite/README.md) for the base and every expert on the
    /// test split. Greedy decoding is deterministic for a machine and thread count (and agrees exactly on the machine
    /// that built the suite), but libtorch picks CPU-specific kernels, so on another CPU a near-tie may flip: the
    /// recorded figures must hold to within two examples of 100, and the suite's targets must hold outright.
    /// </summary>
    const double Slack = 0.02 + 1e-9;

    [Fact]
    public void The_quality_figures_reproduce_and_meet_the_suite_targets()
    {
        var suite = Suite.Load(Dir);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "quality.json")));
        var recorded = doc.RootElement;
        var tokenizer = TokenizerLoader.Load(suite.BasePath);
        using var model = CheckpointLoader.Load(suite.BasePath);
        foreach (var task in suite.HeldIn)
        {
            double baseScore = SuiteEvaluator.Evaluate(model, tokenizer, suite, task).Score;
            Assert.True(baseScore <= 0.2, $"{task.Name}: base scores {baseScore:P0}");
            Assert.InRange(baseScore, recorded.GetProperty("base").GetProperty(task.Name).GetDouble() - Slack, recorded.GetProperty("base").GetProperty(task.Name).GetDouble() + Slack);
            using var adapter = LoraAdapter.Load(task.ExpertPath!, model);
            using (adapter.AttachTo(model))
            {
                double expert = SuiteEvaluator.Evaluate(model, tokenizer, suite, task).Score;
                Assert.True(expert >= 0.9, $"{task.Name}: expert scores {expert:P0}");
                Assert.InRange(expert, recorded.GetProperty("expert").GetProperty(task.Name).GetDouble() - Slack, recorded.GetProperty("expert").GetProperty(task.Name).GetDouble() + Slack);
            }
        }
    }
}
