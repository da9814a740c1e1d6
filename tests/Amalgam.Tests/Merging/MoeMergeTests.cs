using System.Text.Json;
using Amalgam.Merging.Moe;
using Amalgam.Models;
using Amalgam.Tensors;
using Amalgam.Tests.Cli;
using Amalgam.Tests.Models;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

/// <summary>
/// mergekit-moe configs against the independent reference of mergekit/moe/router.py and mixtral.py
/// (tests/Golden/moe/generate.py): gates of each prompt-based gate mode, and the logits of the built MoE.
/// </summary>
public class MoeMergeTests
{
    static readonly string Base = TestData.Golden("llama_gqa");
    static string Expert(string name) => MixtralTests.Moe(Path.Combine("experts", name));

    static string Yaml(string mode, int k = 2, string extra = "", string? baseModel = null)
    {
        var experts = MixtralTests.Cases().GetProperty("experts");
        var y = new System.Text.StringBuilder($"base_model: {baseModel ?? Base}\ngate_mode: {mode}\nexperts_per_token: {k}\n{extra}experts:\n");
        foreach (var e in experts.EnumerateArray())
        {
            y.Append($"  - source_model: {Expert(e.GetProperty("name").GetString()!)}\n    positive_prompts:\n");
            foreach (var p in e.GetProperty("positive").EnumerateArray()) y.Append($"      - {JsonSerializer.Serialize(p.GetString())}\n");
            if (e.GetProperty("negative").GetArrayLength() > 0)
            {
                y.Append("    negative_prompts:\n");
                foreach (var p in e.GetProperty("negative").EnumerateArray()) y.Append($"      - {JsonSerializer.Serialize(p.GetString())}\n");
            }
        }
        return y.ToString();
    }

    static Tensor Expected(string mode)
    {
        var g = MixtralTests.Cases().GetProperty("gates").GetProperty(mode).Deserialize<double[][][]>()!;
        return tensor(g.SelectMany(l => l.SelectMany(e => e)).ToArray(), [g.Length, g[0].Length, g[0][0].Length]);
    }

    [Theory]
    [InlineData("hidden")]
    [InlineData("hidden_last")] // the same as hidden in mergekit
    [InlineData("hidden_avg")]
    [InlineData("cheap_embed")]
    public void Gates_match_mergekits_router_computation(string mode)
    {
        var recipe = MoeRecipe.Parse(Yaml(mode));
        using var scope = NewDisposeScope();
        var gates = MoeGates.Compute(recipe, Base, DecoderConfig.Load(Base));
        var expected = Expected(mode == "hidden_last" ? "hidden" : mode);
        Assert.Equal(expected.shape, gates.shape); // [layers 2, experts 3, hidden 32]
        double diff = (gates.to(ScalarType.Float64) - expected).abs().max().item<double>();
        Assert.True(diff <= 1e-5, $"{mode}: max |Δgate| = {diff:G3}");
        Assert.True(linalg.vector_norm(gates, dims: [-1]).sub(1).abs().max().item<float>() < 1e-5); // unit rows
        if (mode == "cheap_embed") Assert.True(gates[0].equal(gates[1]).all().item<bool>()); // the same in every layer
    }

    [Fact]
    public void The_built_moe_has_mergekits_layout_and_matches_the_reference_logits()
    {
        using var dir = new TestData.TempDir();
        var summary = MoeMerge.Run(MoeRecipe.Parse(Yaml("hidden")), dir["moe"]);
        Assert.Equal(2, summary.TensorsMerged); // one router per layer
        var config = DecoderConfig.Load(dir["moe"]);
        Assert.Equal(("MixtralForCausalLM", "mixtral", 3, 2), (config.Architecture, config.ModelType, config.NumLocalExperts, config.NumExpertsPerToken));
        Assert.Equal((1e-5, 5e5), (config.RmsNormEps, config.RopeTheta)); // the base's, written out
        using (var store = TensorStore.Open(dir["moe"]))
        using (var b = TensorStore.Open(Base))
        using (var a = TensorStore.Open(Expert("b")))
        using (var s = NewDisposeScope())
        {
            Assert.DoesNotContain(store.Names, n => n.Contains(".mlp."));
            Assert.True(store.Load("model.layers.1.block_sparse_moe.experts.1.w1.weight").equal(a.Load("model.layers.1.mlp.gate_proj.weight")).all().item<bool>());
            Assert.True(store.Load("model.layers.1.block_sparse_moe.experts.1.w2.weight").equal(a.Load("model.layers.1.mlp.down_proj.weight")).all().item<bool>());
            Assert.True(store.Load("model.layers.1.block_sparse_moe.experts.1.w3.weight").equal(a.Load("model.layers.1.mlp.up_proj.weight")).all().item<bool>());
            Assert.True(store.Load("model.layers.0.self_attn.q_proj.weight").equal(b.Load("model.layers.0.self_attn.q_proj.weight")).all().item<bool>());
            Assert.Equal([3L, 32L], store.Info("model.layers.0.block_sparse_moe.gate.weight").Shape);
        }
        Assert.True(File.Exists(Path.Combine(dir["moe"], "mergekit_moe_config.yml")));
        Assert.True(File.Exists(Path.Combine(dir["moe"], "tokenizer.amalgam.json")));

        var moe = MixtralTests.Cases().GetProperty("moe");
        var sequences = moe.GetProperty("sequences").Deserialize<long[][]>()!;
        var logits = moe.GetProperty("logits").Deserialize<float[][][]>()!;
        using var model = CheckpointLoader.Load(dir["moe"]);
        for (int i = 0; i < sequences.Length; i++)
        {
            using var scope = NewDisposeScope();
            double diff = MixtralTests.MaxAbsDiff(model.Logits(sequences[i]), logits[i]);
            Assert.True(diff <= 1e-5, $"sequence {i}: max |Δlogit| = {diff:G3}");
        }
    }

    [Fact]
    public void Random_gates_are_standard_normal_and_reproducible_by_seed()
    {
        var recipe = MoeRecipe.Parse($"base_model: {Base}\ngate_mode: random\nexperts:\n" + string.Concat(Enumerable.Repeat($"  - source_model: {Base}\n", 8)));
        var config = DecoderConfig.Load(Base);
        using var scope = NewDisposeScope();
        var draws = Enumerable.Range(0, 50).Select(s => MoeGates.Compute(recipe with { RandomSeed = s }, Base, config)).ToArray();
        Assert.True(draws[3].equal(MoeGates.Compute(recipe with { RandomSeed = 3 }, Base, config)).all().item<bool>());
        Assert.False(draws[3].equal(draws[4]).all().item<bool>());
        var all = stack(draws).to(ScalarType.Float64);                      // 50 × 2 × 8 × 32 = 25,600 draws
        double n = all.numel(), mean = all.mean().item<double>(), variance = all.var().item<double>();
        Assert.True(Math.Abs(mean) < 4 / Math.Sqrt(n), $"mean {mean}");
        Assert.True(Math.Abs(variance - 1) < 4 * Math.Sqrt(2 / n), $"variance {variance}");
        var uniform = MoeGates.Compute(recipe with { GateMode = "uniform_random" }, Base, config);
        Assert.True(uniform.abs().max().item<float>() <= (float)Math.Sqrt(1.0 / 32));
    }

    [Fact]
    public void Noise_and_residual_scale_change_only_the_experts_they_name()
    {
        using var dir = new TestData.TempDir();
        string yaml = Yaml("cheap_embed").Replace($"  - source_model: {Expert("b")}\n", $"  - source_model: {Expert("b")}\n    residual_scale: 0.5\n    noise_scale: 0.01\n");
        MoeMerge.Run(MoeRecipe.Parse(yaml), dir["moe"]);
        using var store = TensorStore.Open(dir["moe"]);
        using var b = TensorStore.Open(Expert("b"));
        using var c = TensorStore.Open(Expert("c"));
        using var scope = NewDisposeScope();
        var noise = store.Load("model.layers.0.block_sparse_moe.experts.1.w1.weight") - b.Load("model.layers.0.mlp.gate_proj.weight");
        Assert.InRange(noise.std().item<float>(), 0.009f, 0.011f);  // 1,536 draws: standard error of the std ≈ 1.8 %
        var w2 = store.Load("model.layers.0.block_sparse_moe.experts.1.w2.weight");
        var scaled = b.Load("model.layers.0.mlp.down_proj.weight") * 0.5;
        Assert.True((w2 - scaled).abs().max().item<float>() < 0.1f);
        Assert.True((w2 - scaled).std().item<float>() is > 0.004f and < 0.006f); // the noise, halved with the rest
        Assert.True(store.Load("model.layers.0.block_sparse_moe.experts.2.w2.weight").equal(c.Load("model.layers.0.mlp.down_proj.weight")).all().item<bool>());
    }

    [Theory]
    [InlineData(4, "", "recipe: experts: 3 experts are fewer than experts_per_token (4)")]
    [InlineData(0, "", "recipe: experts_per_token: must be at least 1, got 0")]
    [InlineData(2, "shared_experts:\n  - source_model: x\n", "recipe: shared_experts: shared experts need architecture: qwen")]
    [InlineData(2, "architecture: qwen\n", "recipe: shared_experts: architecture: qwen needs exactly one shared expert")]
    [InlineData(2, "tokenizer_source: union\n", "recipe: tokenizer_source: unknown field of a mergekit-moe config")]
    public void A_bad_moe_config_is_refused_naming_the_field(int k, string extra, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => MoeRecipe.Parse(Yaml("hidden", k, extra)));
        Assert.StartsWith(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Prompts_are_required_and_must_tell_experts_apart()
    {
        string same = $"base_model: {Base}\nexperts:\n  - source_model: {Expert("a")}\n    positive_prompts: [\"x\"]\n  - source_model: {Expert("b")}\n    positive_prompts: [\"x\"]\n";
        Assert.StartsWith("recipe: experts: the positive and negative prompts are identical for every expert", Assert.Throws<InvalidDataException>(() => MoeRecipe.Parse(same)).Message);
        string none = $"base_model: {Base}\ngate_mode: cheap_embed\nexperts:\n  - source_model: {Expert("a")}\n  - source_model: {Expert("b")}\n    positive_prompts: [\"x\"]\n";
        Assert.StartsWith("recipe: experts[0].positive_prompts: missing; gate_mode cheap_embed", Assert.Throws<InvalidDataException>(() => MoeRecipe.Parse(none)).Message);
        string twin = $"base_model: {Base}\nexperts:\n  - source_model: {Expert("a")}\n    positive_prompts: [\"x\"]\n  - source_model: {Expert("a")}\n    positive_prompts: [\"y\"]\n";
        Assert.StartsWith("recipe: experts: every expert is the same model", Assert.Throws<InvalidDataException>(() => MoeRecipe.Parse(twin)).Message);
        Assert.StartsWith("recipe: gate_mode: unknown value 'dense'", Assert.Throws<InvalidDataException>(() => MoeRecipe.Parse(same.Replace("experts:", "gate_mode: dense\nexperts:"))).Message);
    }

    [Fact]
    public void A_qwen2_base_is_refused_naming_the_missing_output_architecture()
    {
        using var dir = new TestData.TempDir();
        var e = Assert.Throws<NotSupportedException>(() => MoeMerge.Run(MoeRecipe.Parse(Yaml("hidden", baseModel: TestData.Golden("qwen2_tied"))), dir["moe"]));
        Assert.StartsWith("recipe: base_model: Qwen2ForCausalLM cannot become a Mixtral expert", e.Message);
        Assert.False(Directory.Exists(dir["moe"]));
    }

    [Fact]
    public void Amalgam_merge_builds_the_moe_and_logits_and_generate_run_on_it()
    {
        using var dir = new TestData.TempDir();
        File.WriteAllText(dir["moe.yml"], Yaml("hidden"));
        var r = CliRunner.Run("merge", dir["moe.yml"], dir["moe"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.StartsWith("built a Mixtral MoE of 3 experts (2 per token, gate_mode hidden)", r.Stdout);
        var moe = MixtralTests.Cases().GetProperty("moe");
        var sequence = moe.GetProperty("sequences")[0].Deserialize<long[]>()!;
        var expected = moe.GetProperty("logits")[0].Deserialize<float[][]>()![^1];
        var l = CliRunner.Run("logits", "--model", dir["moe"], "--ids", string.Join(",", sequence));
        Assert.True(l.ExitCode == 0, l.Stderr);
        var logits = JsonDocument.Parse(l.Stdout).RootElement.GetProperty("logits").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        for (int v = 0; v < logits.Length; v++) Assert.True(Math.Abs(logits[v] - expected[v]) <= 1e-5, $"token {v}: {logits[v]} vs {expected[v]}");
        var g = CliRunner.Run("generate", "--model", dir["moe"], "--prompt", "the cat", "--max-new-tokens", "4", "--json");
        Assert.True(g.ExitCode == 0, g.Stderr);
        Assert.InRange(JsonDocument.Parse(g.Stdout).RootElement.GetProperty("ids").GetArrayLength(), 0, 4);
    }
}

/// <summary>Computing gates from hidden states and embeddings leaves no tensors behind.</summary>
[Collection(nameof(Amalgam.Tests.Tensors.TensorCountCollection))]
public class MoeGateLeakTests
{
    static long Live()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return Tensor.TotalCount;
    }

    [Fact]
    public void Hidden_and_cheap_gates_free_what_they_make()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"), ScalarType.Float32);
        IReadOnlyList<IReadOnlyList<int>> prompts = [[1, 5, 9, 33], [1, 20, 21, 40, 7]];
        using (var warm = MoeGates.Hidden(model, prompts, average: false)) { }
        long before = Live();
        using (var h = MoeGates.Hidden(model, prompts, average: true))
        using (var c = MoeGates.Cheap(model.Linears["lm_head"].Weight, prompts, 2)) { }
        Assert.Equal(before, Live());
    }
}

/// <summary>mergekit-moe's Qwen output (<c>architecture: qwen</c>, one shared expert): layout, config and gates.</summary>
public class QwenMoeMergeTests
{
    [Fact]
    public void Architecture_qwen_builds_a_qwen2_moe_with_its_shared_expert_and_gate()
    {
        var experts = MixtralTests.Cases().GetProperty("experts").EnumerateArray().ToList();
        string Block(JsonElement e, string indent) =>
            $"{indent}- source_model: {MixtralTests.Moe(Path.Combine("experts", e.GetProperty("name").GetString()!))}\n{indent}  positive_prompts:\n"
            + string.Concat(e.GetProperty("positive").EnumerateArray().Select(p => $"{indent}    - {JsonSerializer.Serialize(p.GetString())}\n"))
            + (e.GetProperty("negative").GetArrayLength() == 0 ? "" : $"{indent}  negative_prompts:\n"
               + string.Concat(e.GetProperty("negative").EnumerateArray().Select(p => $"{indent}    - {JsonSerializer.Serialize(p.GetString())}\n")));
        string yaml = $"base_model: {TestData.Golden("llama_gqa")}\narchitecture: qwen\ngate_mode: hidden\nexperts_per_token: 1\nexperts:\n"
            + Block(experts[0], "  ") + Block(experts[1], "  ") + "shared_experts:\n" + Block(experts[2], "  ");
        using var dir = new TestData.TempDir();
        var summary = MoeMerge.Run(MoeRecipe.Parse(yaml), dir["moe"]);
        Assert.Equal(4, summary.TensorsMerged); // a router and a shared-expert gate per layer
        var config = DecoderConfig.Load(dir["moe"]);
        Assert.Equal(("Qwen2MoeForCausalLM", 2, 1, true), (config.Architecture, config.NumExperts, config.NumExpertsPerToken, config.NormTopkProb));
        Assert.Equal((48, 48), (config.MoeIntermediateSize, config.SharedExpertIntermediateSize));
        var g = MixtralTests.Cases().GetProperty("gates").GetProperty("hidden").Deserialize<double[][][]>()!; // [layer][expert a, b, c][hidden]
        using (var store = TensorStore.Open(dir["moe"]))
        using (var c = TensorStore.Open(MixtralTests.Moe(Path.Combine("experts", "c"))))
        using (var scope = NewDisposeScope())
        {
            Assert.True(store.Load("model.layers.1.mlp.shared_expert.down_proj.weight").equal(c.Load("model.layers.1.mlp.down_proj.weight")).all().item<bool>());
            Assert.Equal([2L, 32L], store.Info("model.layers.0.mlp.gate.weight").Shape);
            for (int layer = 0; layer < 2; layer++)
            {
                var router = store.Load($"model.layers.{layer}.mlp.gate.weight").to(ScalarType.Float64);
                var shared = store.Load($"model.layers.{layer}.mlp.shared_expert_gate.weight").to(ScalarType.Float64);
                Assert.True((router - tensor(g[layer].Take(2).SelectMany(r => r).ToArray(), [2, 32])).abs().max().item<double>() < 1e-5);
                Assert.True((shared - tensor(g[layer][2], [1, 32])).abs().max().item<double>() < 1e-5);
            }
            Assert.Equal(0.0, store.Load("model.layers.0.self_attn.q_proj.bias").abs().max().item<float>()); // Llama has none: zeros, as mergekit
        }
        using var model = CheckpointLoader.Load(dir["moe"]);
        using var logits = model.Logits([1, 5, 7, 9]);
        Assert.True(isfinite(logits).all().item<bool>());
    }

    [Theory]
    [InlineData("architecture: qwen\n", "shared_experts: architecture: qwen needs exactly one shared expert")]
    [InlineData("shared_experts:\n  - source_model: x\n", "shared_experts: shared experts need architecture: qwen")]
    [InlineData("architecture: deepseek\n", "architecture: 'deepseek' is not supported")]
    public void Qwen_output_settings_are_checked(string extra, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => MoeRecipe.Parse($"base_model: b\ngate_mode: random\n{extra}experts:\n  - source_model: a\n  - source_model: c\n"));
        Assert.StartsWith("recipe: " + expected, e.Message);
    }
}
