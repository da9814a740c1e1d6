using Amalgam.Experts;
using TorchSharp;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Lora;
using Amalgam.Merging.Recipes;
using Amalgam.Tensors;
using static Amalgam.Tests.Merging.MergeFixtures;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

/// <summary>LoRA outputs report what truncation lost; rank: auto; extraction from full fine-tunes.</summary>
public class TruncationTests
{
    static string BaseDir => TestData.Golden(Base);
    static readonly string[] Experts = ["llama_gqa.lora_qv", "llama_gqa.lora_all", "llama_gqa.lora_rslora"];

    static string Yaml(string method, string extra) =>
        $"merge_method: {method}\nbase_model: {BaseDir}\nmodels:\n" +
        string.Concat(Experts.Select(e => $"  - model: {TestData.Golden(e)}\n    parameters: {{weight: 1, density: 0.5}}\n".Replace(method == "linear" ? ", density: 0.5" : "\0", ""))) + extra;

    [Fact]
    public void The_errors_reported_are_those_of_the_written_factors()
    {
        using var dir = new TestData.TempDir();
        var summary = MergeRunner.Run(MergeRecipe.Parse(Yaml("ties", "rank: 4\n")), dir["out"]);
        string line = Assert.Single(summary.Notes, n => n.StartsWith("truncation error", StringComparison.Ordinal));
        Assert.Contains("rank 4", line);
        string readme = File.ReadAllText(Path.Combine(dir["out"], "README.md"));
        Assert.Contains("## Truncation error", readme);

        // recompute each module's error from the written factors and the dense merge
        var (adapter, report) = InMemoryMerge.ToAdapter(MergeRecipe.Parse(Yaml("ties", "rank: 4\n")));
        using var _ = adapter;
        var dense = new Dictionary<string, Tensor>();
        using var denseScope = NewDisposeScope();
        MergeRunner.Run(MergeRecipe.Parse(Yaml("ties", "output: model\n")), dir["dense"]);
        Assert.NotNull(report);
        foreach (var m in report!.Modules)
        {
            using var scope = NewDisposeScope();
            var delta = Load(dir["dense"], m.Module + ".weight").to(ScalarType.Float64) - Load(BaseDir, m.Module + ".weight").to(ScalarType.Float64);
            var d = adapter.Deltas[m.Module];
            double err = ((delta - d.Dense(ScalarType.Float64)).norm() / delta.norm()).ToDouble();
            Assert.Equal(err, m.RelativeError, 4);
            Assert.Contains($"`{m.Module}` | 4 |", readme);
        }
        Assert.True(report.Max > 0.05, $"TIES at rank 4 is lossy: {report.Max}");
        Assert.Equal(report.Modules.Max(m => m.RelativeError), report.Max);
    }

    [Fact]
    public void Sparsifying_methods_are_not_exact_at_the_sum_of_input_ranks_but_linear_ones_are()
    {
        using var dir = new TestData.TempDir();
        // Σ rᵢ = 8 + 8 + 8 (down_proj of lora_all has 2): every linear update fits in rank 24
        var linear = MergeRunner.Run(MergeRecipe.Parse(Yaml("linear", "rank: 24\n")), dir["linear"]);
        var ties = MergeRunner.Run(MergeRecipe.Parse(Yaml("ties", "rank: 24\n")), dir["ties"]);
        double Max(MergeSummary s) => double.Parse(s.Notes.Single(n => n.StartsWith("truncation")).Split("max ")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Max(linear) < 1e-4, $"linear: {Max(linear)}");
        Assert.True(Max(ties) > 1e-2, $"ties: {Max(ties)}");
    }

    [Fact]
    public void Rank_auto_picks_the_smallest_rank_under_max_error()
    {
        var plan = MergeRecipe.Parse(Yaml("ties", "rank: auto\nmax_error: 0.2\n"));
        Assert.Equal(0.2, plan.MaxError);
        Assert.Contains("rank: auto", plan.ToYaml());
        var (adapter, report) = InMemoryMerge.ToAdapter(plan);
        using var _ = adapter;
        using var dir = new TestData.TempDir();
        MergeRunner.Run(MergeRecipe.Parse(Yaml("ties", "output: model\n")), dir["dense"]);
        foreach (var m in report!.Modules)
        {
            Assert.True(m.RelativeError <= 0.2, m.Module);
            Assert.Equal(m.Rank, (int)adapter.Deltas[m.Module].Rank);
            using var scope = NewDisposeScope();
            var delta = Load(dir["dense"], m.Module + ".weight") - Load(BaseDir, m.Module + ".weight");
            Assert.Equal(m.RelativeError, TruncationReport.Truncate(delta, m.Rank, null).Error, 6);
            if (m.Rank > 1) Assert.True(TruncationReport.Truncate(delta, m.Rank - 1, null).Error > 0.2, m.Module); // one fewer would not do
        }
        Assert.Equal(0.01, MergeRecipe.Parse(Yaml("ties", "rank: auto\n")).MaxError);
    }

    [Fact]
    public void Extraction_recovers_a_planted_low_rank_update_exactly_at_its_rank()
    {
        using var dir = new TestData.TempDir();
        const int rank = 3;
        var planted = new Dictionary<string, Tensor>();
        using var gen = new Generator(42);
        string tuned = dir["tuned"];
        Directory.CreateDirectory(tuned);
        string[] modules = ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"];
        using (var scope = NewDisposeScope())
        {
            using var store = TensorStore.Open(BaseDir);
            var tensors = new Dictionary<string, Tensor>();
            foreach (var n in store.Names)
            {
                var t = store.Load(n);
                string module = n.EndsWith(".weight") ? n[..^".weight".Length] : "";
                if (modules.Contains(module))
                {
                    var delta = randn(t.shape[0], rank, generator: gen).matmul(randn(rank, t.shape[1], generator: gen)) * 0.1;
                    planted[module] = delta.to(ScalarType.Float64).MoveToOuterDisposeScope();
                    t = t + delta;
                }
                tensors[n] = t;
            }
            SafeTensorsWriter.Save(Path.Combine(tuned, "model.safetensors"), tensors);
        }
        File.Copy(Path.Combine(BaseDir, "config.json"), Path.Combine(tuned, "config.json"));

        string yaml = $"merge_method: task_arithmetic\nbase_model: {BaseDir}\nmodels: [{tuned}]\noutput: adapter\nrank: {rank}\n";
        var summary = MergeRunner.Run(MergeRecipe.Parse(yaml), dir["lora"]);
        Assert.Contains(summary.Notes, n => n.StartsWith("truncation error") && n.Contains("max 0.0000"));
        using var lora = LoraAdapter.Load(dir["lora"]);
        Assert.Equal(modules.Order(), lora.Deltas.Keys.Order());
        foreach (var (module, delta) in planted)
        {
            using var scope = NewDisposeScope();
            var got = lora.Deltas[module].Dense(ScalarType.Float64);
            double rel = ((got - delta).norm() / delta.norm()).ToDouble();
            Assert.True(rel < 1e-5, $"{module}: {rel}");
            delta.Dispose();
        }
        // one rank fewer is reported as lossy
        var lossy = MergeRunner.Run(MergeRecipe.Parse(yaml.Replace($"rank: {rank}", $"rank: {rank - 1}")), dir["lossy"]);
        Assert.DoesNotContain(lossy.Notes, n => n.Contains("max 0.0000"));
        // rank: auto finds the planted rank
        var (auto, report) = InMemoryMerge.ToAdapter(MergeRecipe.Parse(yaml.Replace($"rank: {rank}", "rank: auto")));
        using var __ = auto;
        Assert.All(report!.Modules, m => Assert.Equal(rank, m.Rank));
    }

    [Fact]
    public void Extraction_refuses_changed_norms_unless_told_to_skip_them()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 1); // every tensor changed, norms and embeddings included
        string yaml = $"merge_method: task_arithmetic\nbase_model: {BaseDir}\nmodels: [{a}]\noutput: adapter\nrank: 4\n";
        var message = Assert.Throws<InvalidDataException>(() => MergeRunner.Run(MergeRecipe.Parse(yaml), dir["out"])).Message;
        Assert.Contains("model.embed_tokens.weight", message);
        Assert.Contains("skip_undecomposable", message);
        Assert.False(Directory.Exists(dir["out"]));
        var summary = MergeRunner.Run(MergeRecipe.Parse(yaml + "skip_undecomposable: true\n"), dir["out"]);
        Assert.Contains(summary.Notes, n => n.Contains("NOT in the adapter"));
        Assert.Contains("NOT in the adapter", File.ReadAllText(Path.Combine(dir["out"], "README.md")));
    }
}
