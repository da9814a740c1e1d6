using System.Text.Json;
using Amalgam.Bundled;
using Amalgam.Evaluation;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Tokenizers;

namespace Amalgam.Tests.Bundled;

/// <summary>
/// The committed suites: suite/ (the instruct variant, the default) and suite/scratch/ (the from-scratch variant,
/// sharing suite/data): each loads, its experts fit its base, and its quality claims hold.
/// </summary>
public class BundledSuiteTests
{
    static readonly string Root = Path.Combine(TestData.RepoRoot, "suite");

    public static TheoryData<string, SuiteVariant> Bundled => new() { { "suite", SuiteVariant.Instruct }, { "suite/scratch", SuiteVariant.Scratch } };

    static string DirOf(string name) => Path.Combine(TestData.RepoRoot, name);

    [Theory]
    [MemberData(nameof(Bundled))]
    public void The_bundled_suite_loads_and_every_expert_is_a_valid_adapter_of_the_bundled_base(string name, SuiteVariant variant)
    {
        var suite = Suite.Load(DirOf(name));
        Assert.Equal(variant == SuiteVariant.Instruct ? "instruct" : "scratch", ReadQuality(name).GetProperty("variant").GetString());
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
    }

    [Fact]
    public void Both_bundled_suites_share_one_copy_of_the_data_and_stay_under_20_MB()
    {
        var instruct = Suite.Load(Root);
        var scratch = Suite.Load(DirOf("suite/scratch"));
        foreach (var task in instruct.Tasks)
            Assert.Equal(Path.GetFullPath(task.DataPath), Path.GetFullPath(scratch.Tasks.Single(t => t.Name == task.Name).DataPath));
        long bytes = new DirectoryInfo(Root).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
        Assert.True(bytes <= 20_000_000, $"suite/ is {bytes:N0} bytes");
    }

    static JsonElement ReadQuality(string name) => JsonDocument.Parse(File.ReadAllText(Path.Combine(DirOf(name), "quality.json"))).RootElement;

    /// <summary>
    /// Recomputes the figures of suite/quality.json (and so suite/README.md) for the base and every expert on the
    /// test split. Greedy decoding is deterministic for a machine and thread count (and agrees exactly on the machine
    /// that built the suite), but libtorch picks CPU-specific kernels, so on another CPU a near-tie may flip: the
    /// recorded figures must hold to within two examples of 100, and the suite's targets must hold outright.
    /// </summary>
    const double Slack = 0.02 + 1e-9;

    [Theory]
    [MemberData(nameof(Bundled))]
    public void The_quality_figures_reproduce_and_meet_the_suite_targets(string name, SuiteVariant variant)
    {
        var suite = Suite.Load(DirOf(name));
        var recorded = ReadQuality(name);
        var (baseMin, baseMax, expertMin) = QualityReport.Targets(variant);
        // The instruct base's one documented miss: reverse_word stays below its target (see suite/README.md).
        var baseMisses = new List<string>();
        var tokenizer = TokenizerLoader.Load(suite.BasePath);
        using var model = CheckpointLoader.Load(suite.BasePath);
        foreach (var task in suite.HeldIn)
        {
            double baseScore = SuiteEvaluator.Evaluate(model, tokenizer, suite, task).Score;
            if (baseScore < baseMin || baseScore > baseMax) baseMisses.Add(task.Name);
            Assert.InRange(baseScore, recorded.GetProperty("base").GetProperty(task.Name).GetDouble() - Slack, recorded.GetProperty("base").GetProperty(task.Name).GetDouble() + Slack);
            using var adapter = LoraAdapter.Load(task.ExpertPath!, model);
            using (adapter.AttachTo(model))
            {
                double expert = SuiteEvaluator.Evaluate(model, tokenizer, suite, task).Score;
                Assert.True(expert >= expertMin, $"{task.Name}: expert scores {expert:P0}");
                Assert.InRange(expert, recorded.GetProperty("expert").GetProperty(task.Name).GetDouble() - Slack, recorded.GetProperty("expert").GetProperty(task.Name).GetDouble() + Slack);
            }
        }
        Assert.Equal(variant == SuiteVariant.Instruct ? ["reverse_word"] : [], baseMisses);
    }
}
