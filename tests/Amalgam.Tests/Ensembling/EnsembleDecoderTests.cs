using Amalgam.Predictors;
using Amalgam.Ensembling;
using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Tests.Ensembling;

public class EnsembleDecoderTests
{
    static readonly string[] Adapters = ["llama_gqa.lora_qv", "llama_gqa.lora_all", "llama_gqa.lora_rslora"];

    [Fact]
    public void Combine_is_a_mixture_of_probabilities_or_a_normalised_weighted_sum_of_log_probabilities()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(5);
        var logits = randn(new long[] { 2 * 3, 7 }, generator: g) * 3;     // 2 prompts × 3 experts
        var w = tensor(new float[] { 0.2f, 0.5f, 0.3f });
        var p = nn.functional.softmax(logits.to(ScalarType.Float64), -1).reshape(2, 3, 7);
        var w64 = w.to(ScalarType.Float64).reshape(1, 3, 1);
        var mixture = (p * w64).sum(1).log();
        var product = nn.functional.log_softmax((p.log() * w64).sum(1), -1);
        Assert.True((EnsembleDecoder.Combine(logits, w, EnsembleAggregation.Probabilities).to(ScalarType.Float64) - mixture).abs().max().item<double>() < 1e-5);
        Assert.True((EnsembleDecoder.Combine(logits, w, EnsembleAggregation.LogProbabilities).to(ScalarType.Float64) - product).abs().max().item<double>() < 1e-5);
    }

    [Theory]
    [InlineData(EnsembleAggregation.Probabilities)]
    [InlineData(EnsembleAggregation.LogProbabilities)]
    public void All_weight_on_one_expert_decodes_like_that_expert_alone(EnsembleAggregation aggregation)
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var adapters = Adapters.Select(a => LoraAdapter.Load(TestData.Golden(a), model)).ToList();
        using var library = new ExpertLibrary(model, adapters);
        var sequences = TestData.Case("llama_gqa").Sequences;
        for (int e = 0; e < 3; e++)
        {
            var w = new double[3];
            w[e] = 1.0;
            var generated = EnsemblePredictor.Weighted(model, w, aggregation).Generate(sequences, 6, [], 0);
            var golden = TestData.Case("llama_gqa+" + Adapters[e].Split('.')[1]).Greedy;
            for (int r = 0; r < sequences.Length; r++) Assert.Equal(golden[r], generated[r]);
        }
        foreach (var a in adapters) a.Dispose();
    }

    [Fact]
    public void The_first_ensembled_token_is_the_argmax_of_the_experts_combined_distributions()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var adapters = Adapters.Select(a => LoraAdapter.Load(TestData.Golden(a), model)).ToList();
        long[] seq = TestData.Case("llama_gqa").Sequences[1];
        var perExpert = adapters.Select(a => { using (a.AttachTo(model)) return model.Logits(seq)[^1].to(ScalarType.Float64); }).ToList();
        var w = new[] { 0.5, 0.25, 0.25 };
        using var mixture = perExpert.Select((l, i) => nn.functional.softmax(l, -1) * w[i]).Aggregate((x, y) => x + y);
        long expected = mixture.argmax().item<long>();
        using var library = new ExpertLibrary(model, adapters);
        var generated = EnsemblePredictor.Weighted(model, w, EnsembleAggregation.Probabilities).Generate([seq], 1, [], 0);
        Assert.Equal(expected, generated[0][0]);
        foreach (var a in adapters) a.Dispose();
    }

    [Fact]
    public void Weights_must_be_a_distribution_over_the_library()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var adapters = Adapters.Take(2).Select(a => LoraAdapter.Load(TestData.Golden(a), model)).ToList();
        using var library = new ExpertLibrary(model, adapters);
        Assert.Throws<ArgumentException>(() => EnsemblePredictor.Weighted(model, [1.0 / 3, 1.0 / 3, 1.0 / 3], EnsembleAggregation.Probabilities).Generate([[5, 6]], 2, [], 0));
        Assert.Throws<ArgumentException>(() => EnsemblePredictor.Weighted(model, [0.7, 0.7], EnsembleAggregation.Probabilities).Generate([[5, 6]], 2, [], 0));
        foreach (var a in adapters) a.Dispose();
    }
}
