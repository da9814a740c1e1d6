using System.Text.Json;
using Amalgam.Experts;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Lora;
using Amalgam.Merging.Recipes;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

/// <summary>
/// PEFT's add_weighted_adapter types against tests/Golden/merging/peft_factor_space.py (an independent numpy
/// implementation of PEFT's merge_utils), and what merges do with DoRA experts and modules_to_save.
/// </summary>
public class PeftLoraMergeTests
{
    static readonly JsonElement Cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.RepoRoot, "tests", "Golden", "merging", "peft_factor_cases.json"))).RootElement.GetProperty("cases");

    static JsonElement Case(string name) => Cases.EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    static string Yaml(JsonElement c, string? output = null, bool? doubleScale = null, int? rank = null)
    {
        var experts = c.GetProperty("experts").EnumerateArray().Select(e => e.GetString()!).ToList();
        var weights = c.GetProperty("weights").EnumerateArray().Select(w => w.GetDouble()).ToList();
        var global = c.GetProperty("global").EnumerateObject().Select(p => $"  {p.Name}: {p.Value.GetRawText().Trim('"')}\n");
        return $"merge_method: {c.GetProperty("method").GetString()}\nbase_model: {TestData.Golden("llama_gqa")}\nmodels:\n" +
               string.Concat(experts.Select((e, i) => $"  - model: {TestData.Golden(e)}\n    parameters: {{weight: {weights[i]}}}\n")) +
               (global.Any() ? "parameters:\n" + string.Concat(global) : "") +
               $"output: {output ?? c.GetProperty("output").GetString()}\n" +
               (doubleScale is { } d ? $"peft_double_scale: {(d ? "true" : "false")}\n" : "") +
               (rank is { } r ? $"rank: {r}\n" : "");
    }

    static Tensor Values(JsonElement e, long[] shape) => tensor(e.EnumerateArray().Select(v => v.GetDouble()).ToArray(), shape);

    static void AssertClose(Tensor actual, Tensor expected, string what, double tol = 1e-5)
    {
        double scale = expected.abs().max().item<double>() + 1e-12;
        double diff = (actual.to(ScalarType.Float64) - expected).abs().max().item<double>();
        Assert.True(diff <= tol * scale, $"{what}: max difference {diff:G3} (scale {scale:G3})");
    }

    [Theory]
    [InlineData("ties")]
    [InlineData("ties/frequency")]
    [InlineData("ties/negative_weight")]
    [InlineData("magnitude_prune")]
    [InlineData("dare_linear")]
    [InlineData("dare_ties")]
    public void Factor_space_types_apply_PEFTs_formulas_to_A_and_B_separately(string name)
    {
        var c = Case(name);
        using var inputs = new MergeInputSet(MergeRecipe.Parse(Yaml(c), "recipe.yaml"));
        var experts = inputs.Models.Select(m => ((LoraExpertSource)m.Source).Adapter).ToList();
        foreach (var module in c.GetProperty("modules").EnumerateObject())
        {
            using var scope = NewDisposeScope();
            var present = experts.Where(e => e.Deltas.ContainsKey(module.Name)).Select(e => e.Deltas[module.Name]).ToList();
            IReadOnlyList<Tensor> Masks(string factor)
            {
                string part = factor.EndsWith(".lora_A.weight") ? "A" : "B";
                return module.Value.GetProperty(part + "_masks").EnumerateArray()
                    .Select((m, j) => Values(m, part == "A" ? present[j].A.shape : present[j].B.shape).to(ScalarType.Float32)).ToList();
            }
            bool random = module.Value.TryGetProperty("A_masks", out _);
            var (a, b) = PeftFactorSpace.Merge(inputs, experts, module.Name, random ? Masks : null);
            AssertClose(a, Values(module.Value.GetProperty("A"), present[0].A.shape), $"{name} {module.Name} A");
            AssertClose(b, Values(module.Value.GetProperty("B"), present[0].B.shape), $"{name} {module.Name} B");
        }
    }

    [Fact]
    public void A_factor_space_ties_merge_writes_the_reference_factors_and_says_it_is_approximate()
    {
        var c = Case("ties");
        using var dir = new TestData.TempDir();
        var summary = MergeRunner.Run(MergeRecipe.Parse(Yaml(c), "recipe.yaml"), dir["out"]);
        Assert.Contains(summary.Notes, n => n.StartsWith("APPROXIMATE") && n.Contains("'ties'"));
        using var merged = LoraAdapter.Load(dir["out"]);
        foreach (var module in c.GetProperty("modules").EnumerateObject())
        {
            var d = merged.Deltas[module.Name];
            Assert.Equal(1.0, d.Scale, 12);
            AssertClose(d.A, Values(module.Value.GetProperty("A"), d.A.shape), module.Name + " A");
            AssertClose(d.B, Values(module.Value.GetProperty("B"), d.B.shape), module.Name + " B");
        }
    }

    [Theory]
    [InlineData("svd/double_scale")]
    [InlineData("ties_svd/double_scale")]
    public void Peft_double_scale_reproduces_PEFTs_svd_types_and_is_off_by_default(string name)
    {
        var c = Case(name);
        using var dir = new TestData.TempDir();
        MergeRunner.Run(MergeRecipe.Parse(Yaml(c, doubleScale: true, rank: 32), "recipe.yaml"), dir["double"]);
        MergeRunner.Run(MergeRecipe.Parse(Yaml(c, rank: 32), "recipe.yaml"), dir["single"]);
        using var twice = LoraAdapter.Load(dir["double"]);
        using var once = LoraAdapter.Load(dir["single"]);
        foreach (var module in c.GetProperty("modules").EnumerateObject())
        {
            using var scope = NewDisposeScope();
            var dense = twice.Deltas[module.Name].Dense(ScalarType.Float64);
            var expected = Values(module.Value.GetProperty("product"), dense.shape);
            AssertClose(dense, expected, $"{name} {module.Name}", 1e-4);
            // Single scaling (the default) differs wherever s ≠ 1 (s = 2 and 4 here).
            Assert.True((once.Deltas[module.Name].Dense(ScalarType.Float64) - expected).abs().max().item<double>() > 0.1 * expected.abs().max().item<double>());
        }
    }

    static string OneExpert(string expert, string output) =>
        $"merge_method: linear\nbase_model: {TestData.Golden("llama_gqa")}\nmodels:\n  - model: {TestData.Golden(expert)}\n    parameters: {{weight: 1.0}}\noutput: {output}\n";

    [Theory]
    [InlineData("llama_gqa.dora", "llama_gqa+dora")]
    [InlineData("llama_gqa.saved", "llama_gqa+saved")]
    public void A_dense_merge_takes_DoRA_experts_and_saved_modules_as_their_folded_weights(string expert, string golden)
    {
        using var dir = new TestData.TempDir();
        MergeRunner.Run(MergeRecipe.Parse(OneExpert(expert, "model"), "recipe.yaml"), dir["out"]);
        using var model = CheckpointLoader.Load(dir["out"]);
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.Golden("peft_goldens.json")));
        var c = doc.RootElement.EnumerateArray().Single(x => x.GetProperty("name").GetString() == golden);
        var sequences = c.GetProperty("sequences").Deserialize<long[][]>()!;
        var logits = c.GetProperty("logits").Deserialize<float[][][]>()!;
        for (int s = 0; s < sequences.Length; s++)
        {
            using var scope = NewDisposeScope();
            var e = tensor(logits[s].SelectMany(r => r).ToArray(), [logits[s].Length, logits[s][0].Length]);
            double diff = (model.Logits(sequences[s]) - e).abs().max().item<float>();
            Assert.True(diff <= 1e-4, $"{golden} sequence {s}: max |Δlogit| = {diff:G3}");
        }
    }

    [Fact]
    public void Merges_that_cannot_hold_DoRA_or_saved_modules_refuse_them_naming_the_tensor()
    {
        using var dir = new TestData.TempDir();
        var e = Assert.Throws<NotSupportedException>(() => MergeRunner.Run(MergeRecipe.Parse(OneExpert("llama_gqa.dora", "cat"), "recipe.yaml"), dir["a"]));
        Assert.Contains("lora_magnitude_vector", e.Message);
        e = Assert.Throws<NotSupportedException>(() => MergeRunner.Run(MergeRecipe.Parse(OneExpert("llama_gqa.saved", "adapter"), "recipe.yaml"), dir["b"]));
        Assert.Contains("modules_to_save", e.Message);
        Assert.Contains("lm_head", e.Message);
        // A DoRA expert merges exactly under output: adapter (its folded weights, then the truncated SVD).
        MergeRunner.Run(MergeRecipe.Parse(OneExpert("llama_gqa.dora", "adapter"), "recipe.yaml"), dir["c"]);
        Assert.False(Directory.Exists(dir["a"]) || Directory.Exists(dir["b"]));
    }

    [Fact]
    public void Factor_space_types_need_PEFTs_conventions_and_the_double_scale_needs_an_adapter_output()
    {
        using var dir = new TestData.TempDir();
        var ties = Case("ties");
        var e = Assert.ThrowsAny<Exception>(() => MergeRunner.Run(MergeRecipe.Parse(Yaml(ties).Replace("  flavor: peft\n", ""), "recipe.yaml"), dir["a"]));
        Assert.Contains("flavor", e.Message);
        e = Assert.ThrowsAny<Exception>(() => MergeRunner.Run(MergeRecipe.Parse(Yaml(ties).Replace("  flavor: peft\n", "  flavor: peft\n  lambda: 0.5\n"), "recipe.yaml"), dir["b"]));
        Assert.Contains("lambda", e.Message);
        e = Assert.ThrowsAny<Exception>(() => MergeRecipe.Parse(Yaml(ties, doubleScale: true), "recipe.yaml"));
        Assert.Contains("peft_double_scale", e.Message);
        e = Assert.ThrowsAny<Exception>(() => MergeRunner.Run(MergeRecipe.Parse(OneExpert("llama_gqa.lora_qv", "model") + "peft_double_scale: true\n", "recipe.yaml"), dir["c"]));
        Assert.Contains("peft_double_scale", e.Message);
    }
}
