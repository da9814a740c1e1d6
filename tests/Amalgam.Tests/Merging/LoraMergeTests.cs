using Amalgam.Experts;
using Amalgam.Merging.Recipes;
using Amalgam.Models;
using Amalgam.Tensors;
using static Amalgam.Tests.Merging.MergeFixtures;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

public class LoraMergeTests
{
    static readonly string[] Experts = ["llama_gqa.lora_qv", "llama_gqa.lora_all", "llama_gqa.lora_rslora"];
    static readonly double[] Weights = [0.5, 0.3, 0.2];

    static string Yaml(string method, string extra, string[]? experts = null, double[]? weights = null)
    {
        experts ??= Experts;
        weights ??= Weights;
        return $"merge_method: {method}\nbase_model: {TestData.Golden(Base)}\nmodels:\n" +
               string.Concat(experts.Select((e, i) => $"  - model: {TestData.Golden(e)}\n    parameters: {{weight: {weights[i]}}}\n")) + extra;
    }

    /// <summary>The reference: Σ wᵢ·sᵢ·Bᵢ·Aᵢ per module in float64, straight from the adapters.</summary>
    static Dictionary<string, Tensor> WeightedSum(string[]? experts = null, double[]? weights = null)
    {
        experts ??= Experts;
        weights ??= Weights;
        var sum = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < experts.Length; i++)
        {
            using var adapter = LoraAdapter.Load(TestData.Golden(experts[i]));
            foreach (var (module, d) in adapter.Deltas)
            {
                var term = d.Dense(ScalarType.Float64) * weights[i];
                sum[module] = sum.TryGetValue(module, out var s) ? s + term : term;
            }
        }
        return sum;
    }

    [Fact]
    public void Adapter_output_at_rank_k_is_the_best_rank_k_approximation_per_layer()
    {
        using var dir = new TestData.TempDir();
        var summary = Merge(Yaml("linear", "rank: 3\n"), dir["out"]);
        Assert.Equal(MergeOutput.Adapter, summary.Output);
        using var merged = LoraAdapter.Load(dir["out"]);
        Assert.Equal(3, merged.Config.R);
        Assert.Equal(3, merged.Config.LoraAlpha);
        Assert.False(merged.Config.UseRslora);
        var expected = WeightedSum();
        try
        {
            Assert.Equal(expected.Keys.Order(), merged.Deltas.Keys.Order());
            foreach (var (module, target) in expected)
            {
                using var scope = NewDisposeScope();
                var d = merged.Deltas[module];
                Assert.Equal(1.0, d.Scale);
                var s = linalg.svdvals(target);
                double discarded = s.narrow(0, 3, s.shape[0] - 3).square().sum().item<double>();
                double error = (d.Dense(ScalarType.Float64) - target).square().sum().item<double>();
                double total = s.square().sum().item<double>();
                Assert.True(Math.Abs(error - discarded) <= 1e-4 * total, $"{module}: error² {error} vs discarded σ² {discarded}");
            }
        }
        finally { MergeFixtures.Dispose(expected); }
    }

    [Fact]
    public void Adapter_output_is_exact_when_the_rank_covers_the_sum_of_input_ranks_and_attaches_to_the_base()
    {
        using var dir = new TestData.TempDir();
        Merge(Yaml("linear", "rank: 16\n"), dir["out"]);
        using var model = CheckpointLoader.Load(TestData.Golden(Base));
        using var merged = LoraAdapter.Load(dir["out"], model); // validates target_modules against the base
        var expected = WeightedSum();
        try
        {
            foreach (var (module, target) in expected)
            {
                using var dense = merged.Deltas[module].Dense(ScalarType.Float64);
                double err = (dense - target).abs().max().item<double>(), scale = target.abs().max().item<double>();
                Assert.True(err <= 1e-5 * scale, $"{module}: {err} vs {scale}");
            }
        }
        finally { MergeFixtures.Dispose(expected); }
    }

    [Fact]
    public void Cat_is_exact_and_its_logits_equal_attaching_the_weighted_inputs()
    {
        using var dir = new TestData.TempDir();
        var weights = new[] { 0.7, -0.4, 1.3 };
        var summary = Merge(Yaml("task_arithmetic", "output: cat\n", weights: weights), dir["out"]);
        Assert.Equal(MergeOutput.Cat, summary.Output);
        using var model = CheckpointLoader.Load(TestData.Golden(Base));
        using var merged = LoraAdapter.Load(dir["out"], model);
        var expected = WeightedSum(weights: weights);
        try
        {
            foreach (var (module, target) in expected)
            {
                using var dense = merged.Deltas[module].Dense(ScalarType.Float64);
                Assert.True((dense - target).abs().max().item<double>() <= 1e-5 * target.abs().max().item<double>(), module);
            }
            // Ranks are per module (Σ rᵢ over the experts targeting it), each with scale 1.
            Assert.Equal(4 + 8 + 4, merged.Deltas["model.layers.0.self_attn.q_proj"].Rank);
            Assert.Equal(2, merged.Deltas["model.layers.0.mlp.down_proj"].Rank);
            Assert.All(merged.Deltas.Values, d => Assert.Equal(1.0, d.Scale, 12));
        }
        finally { MergeFixtures.Dispose(expected); }

        long[] ids = [5, 9, 14, 3, 22];
        Tensor attachedLogits;
        var scaled = Experts.Select((e, i) =>
        {
            using var a = LoraAdapter.Load(TestData.Golden(e));
            return new LoraAdapter(e, a.Config, a.Deltas.ToDictionary(d => d.Key, d => (d.Value.A * weights[i], d.Value.B.clone())));
        }).ToList();
        try
        {
            var handles = scaled.Select(a => a.AttachTo(model)).ToList();
            attachedLogits = model.Logits(ids);
            foreach (var h in handles) h.Dispose();
        }
        finally { foreach (var a in scaled) a.Dispose(); }
        using (attachedLogits)
        using (merged.AttachTo(model))
        {
            using var mergedLogits = model.Logits(ids);
            Assert.True((mergedLogits - attachedLogits).abs().max().item<float>() < 1e-4f);
        }
    }

    [Fact]
    public void Factor_linear_mixes_A_and_B_separately_and_is_labelled_approximate()
    {
        using var dir = new TestData.TempDir();
        string[] experts = ["llama_gqa.lora_qv", "llama_gqa.lora_rslora"];
        double[] weights = [0.6, 0.4];
        var summary = Merge(Yaml("linear", "output: factor_linear\n", experts, weights), dir["out"]);
        Assert.Contains(summary.Notes, n => n.StartsWith("APPROXIMATE"));
        Assert.Contains("APPROXIMATE", File.ReadAllText(Path.Combine(dir["out"], "README.md")));
        using var merged = LoraAdapter.Load(dir["out"]);
        using var qv = LoraAdapter.Load(TestData.Golden(experts[0]));
        using var rs = LoraAdapter.Load(TestData.Golden(experts[1]));
        const string module = "model.layers.0.self_attn.q_proj";
        using var scope = NewDisposeScope();
        var (d0, d1) = (qv.Deltas[module], rs.Deltas[module]);
        var a = d0.A * Math.Sqrt(weights[0] * d0.Scale) + d1.A * Math.Sqrt(weights[1] * d1.Scale);
        var b = d0.B * Math.Sqrt(weights[0] * d0.Scale) + d1.B * Math.Sqrt(weights[1] * d1.Scale);
        Assert.True(merged.Deltas[module].A.allclose(a, rtol: 1e-5, atol: 1e-6));
        Assert.True(merged.Deltas[module].B.allclose(b, rtol: 1e-5, atol: 1e-6));
        // Only q_proj has both experts: v_proj (qv only) and k_proj (rslora only) are single-expert mixes.
        Assert.True(merged.Deltas["model.layers.0.self_attn.v_proj"].A.allclose(qv.Deltas["model.layers.0.self_attn.v_proj"].A * Math.Sqrt(weights[0] * d0.Scale), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Factor_outputs_are_refused_for_methods_that_are_not_linear_combinations()
    {
        using var dir = new TestData.TempDir();
        string yaml = $"merge_method: random_mask\nbase_model: {TestData.Golden(Base)}\nmodels: [{TestData.Golden(Experts[0])}]\nparameters: {{epsilon: 0}}\noutput: cat\n";
        var e = Assert.Throws<InvalidDataException>(() => Merge(yaml, dir["out"]));
        Assert.Contains("output: cat is exact only for a linear combination", e.Message);
        Assert.False(Directory.Exists(dir["out"]));
    }

    [Fact]
    public void Model_output_from_LoRA_inputs_adds_the_weighted_updates_and_keeps_untargeted_layers()
    {
        using var dir = new TestData.TempDir();
        Merge(Yaml("task_arithmetic", "output: model\n"), dir["out"]);
        using var baseStore = TensorStore.Open(TestData.Golden(Base));
        using var scope = NewDisposeScope();
        var expected = WeightedSum();
        const string module = "model.layers.1.self_attn.q_proj";
        var got = Load(dir["out"], module + ".weight").to(ScalarType.Float64);
        var want = baseStore.Load(module + ".weight").to(ScalarType.Float64) + expected[module];
        Assert.True((got - want).abs().max().item<double>() < 1e-5);
        Assert.True(Load(dir["out"], "lm_head.weight").equal(baseStore.Load("lm_head.weight")).all().item<bool>());
        Assert.True(Load(dir["out"], "model.layers.0.input_layernorm.weight").equal(baseStore.Load("model.layers.0.input_layernorm.weight")).all().item<bool>());
        MergeFixtures.Dispose(expected);
    }

    [Fact]
    public void Adapter_outputs_need_adapters_and_a_base()
    {
        using var dir = new TestData.TempDir();
        string noBase = $"merge_method: linear\nmodels:\n  - model: {TestData.Golden(Experts[0])}\n    parameters: {{weight: 1}}\n";
        Assert.Contains("base_model: missing", Assert.Throws<InvalidDataException>(() => Merge(noBase, dir["out"])).Message);
        string a = Perturbed(dir, "a", 3);
        string mixed = Yaml("linear", "output: adapter\n", [Experts[0], "x"], [1, 1]).Replace(TestData.Golden("x"), a);
        Assert.Contains("needs every model to be a LoRA adapter", Assert.Throws<InvalidDataException>(() => Merge(mixed, dir["out"])).Message);
    }
}
