using System.Text.Json;
using Amalgam.Evaluation;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Tests.Models;

/// <summary>
/// Qwen2-MoE's sparse block (routed experts + sigmoid-gated shared expert, dense layers in mlp_only_layers) against
/// the float64 reference of tests/Golden/moe/qwen2_moe.py, with norm_topk_prob off (Qwen2MoeConfig's default) and on.
/// </summary>
public class Qwen2MoeTests
{
    static JsonElement Cases() => JsonDocument.Parse(File.ReadAllText(MixtralTests.Moe("qwen2_moe_cases.json"))).RootElement;

    [Theory]
    [InlineData("qwen2_moe")]
    [InlineData("qwen2_moe_norm")]
    public void Logits_match_the_reference_at_every_position(string name)
    {
        var c = Cases().GetProperty(name);
        var sequences = c.GetProperty("sequences").Deserialize<long[][]>()!;
        var logits = c.GetProperty("logits").Deserialize<float[][][]>()!;
        using var model = CheckpointLoader.Load(MixtralTests.Moe(name));
        for (int i = 0; i < sequences.Length; i++)
        {
            using var scope = NewDisposeScope();
            double diff = MixtralTests.MaxAbsDiff(model.Logits(sequences[i]), logits[i]);
            Assert.True(diff <= 1e-5, $"{name} sequence {i}: max |Δlogit| = {diff:G3}");
        }
    }

    [Fact]
    public void The_config_reads_qwen2_moe_and_counts_parameters_and_sparse_flops()
    {
        var config = DecoderConfig.Load(MixtralTests.Moe("qwen2_moe"));
        Assert.True(config.IsQwen2Moe);
        Assert.Equal((true, false, true), (config.IsSparseLayer(0), config.IsSparseLayer(1), config.IsSparseLayer(2)));
        using (var model = CheckpointLoader.Load(MixtralTests.Moe("qwen2_moe")))
            Assert.Equal(model.parameters().Sum(p => p.numel()), config.ParameterCount);

        // Per token, a sparse layer runs k = 2 of its 4 experts, the shared expert, the router and the shared gate.
        long h = 32, q = 32, kv = 16;
        double attention = 2.0 * (h * q + 2 * h * kv + q * h);
        double sparse = attention + 2 * (2.0 * 3 * h * 16) + 2.0 * 3 * h * 20 + 2.0 * h * 4 + 2.0 * h;
        double dense = attention + 2.0 * 3 * h * 24;
        Assert.Equal(sparse, FlopCounter.LayerLinearFlopsPerToken(config, 0));
        Assert.Equal(dense, FlopCounter.LayerLinearFlopsPerToken(config, 1));
        Assert.Equal(2 * sparse + dense + 2.0 * h * 64 + 3 * FlopCounter.AttentionFlopsPerToken(config, 5), FlopCounter.ForwardFlopsPerToken(config, 5));
    }

    [Fact]
    public void Mixtral_flops_count_the_top_k_experts_and_the_router_not_all_experts()
    {
        var config = DecoderConfig.Load(MixtralTests.Moe("mixtral")); // 4 experts, top 2, hidden 32, intermediate 24
        long h = 32, q = 32, kv = 16;
        double expected = 2.0 * (h * q + 2 * h * kv + q * h) + config.NumExpertsPerToken * 2.0 * 3 * h * 24 + 2.0 * h * config.NumLocalExperts;
        Assert.Equal((4, 2), (config.NumLocalExperts, config.NumExpertsPerToken));
        Assert.Equal(expected, FlopCounter.LayerLinearFlopsPerToken(config, 0));
    }
}
