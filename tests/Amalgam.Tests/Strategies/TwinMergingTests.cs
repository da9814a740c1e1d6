using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using Amalgam.Strategies;
using static TorchSharp.torch;

namespace Amalgam.Tests.Strategies;

public class TwinMergingTests
{
    static readonly string[] Adapters = ["llama_gqa.lora_qv", "llama_gqa.lora_all", "llama_gqa.lora_rslora"];

    [Fact]
    public void Shared_plus_an_uncompressed_exclusive_part_is_the_expert_again()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var experts = Adapters.Select(a => LoraAdapter.Load(TestData.Golden(a), model)).ToList();
        using var shared = ExpertMerge.ToModel(TestData.Golden("llama_gqa"), Adapters.Select(TestData.Golden).ToList(), "task_arithmetic",
            new Dictionary<string, object> { ["lambda"] = 0.3 });
        var exclusive = TwinMerging.Exclusive(model, shared, experts, new TwinMergingOptions(ExclusiveRank: 64));
        for (int k = 0; k < experts.Count; k++)
            foreach (var (module, delta) in experts[k].Deltas)
            {
                using var scope = NewDisposeScope();
                var sharedDelta = shared.Linears[module].Weight - model.Linears[module].Weight;
                var rebuilt = sharedDelta + exclusive[k].Deltas[module].Dense();
                Assert.True((rebuilt - delta.Dense()).abs().max().item<float>() < 1e-5, $"{Adapters[k]} {module}");
            }
        foreach (var e in experts.Concat(exclusive)) e.Dispose();
    }

    [Fact]
    public void The_exclusive_part_is_the_best_rank_r_approximation_and_keeps_the_expert_s_rank_by_default()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var experts = Adapters.Select(a => LoraAdapter.Load(TestData.Golden(a), model)).ToList();
        using var shared = ExpertMerge.ToModel(TestData.Golden("llama_gqa"), Adapters.Select(TestData.Golden).ToList(), "task_arithmetic",
            new Dictionary<string, object> { ["lambda"] = 0.3 });
        var exclusive = TwinMerging.Exclusive(model, shared, experts);
        for (int k = 0; k < experts.Count; k++)
            foreach (var (module, delta) in experts[k].Deltas)
            {
                using var scope = NewDisposeScope();
                Assert.Equal(delta.Rank, exclusive[k].Deltas[module].Rank);
                var target = (delta.Dense() - (shared.Linears[module].Weight - model.Linears[module].Weight)).to(ScalarType.Float64);
                var s = linalg.svdvals(target);
                double optimal = s.narrow(0, delta.Rank, s.shape[0] - delta.Rank).pow(2).sum().sqrt().item<double>();
                double error = (target - exclusive[k].Deltas[module].Dense().to(ScalarType.Float64)).norm().item<double>();
                Assert.True(Math.Abs(error - optimal) < 1e-4 * Math.Max(1, optimal), $"{module}: {error} vs Eckart–Young {optimal}");
            }
        foreach (var e in experts.Concat(exclusive)) e.Dispose();
    }

    [Fact]
    public void A_linear_merge_through_the_executor_equals_the_factored_mixture_with_the_same_weights()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var experts = Adapters.Select(a => LoraAdapter.Load(TestData.Golden(a), model)).ToList();
        var w = new[] { 0.5, 0.3, 0.2 };
        using var merged = ExpertMerge.ToModel(TestData.Golden("llama_gqa"), Adapters.Select(TestData.Golden).ToList(), "linear",
            weights: w.Select(x => (IReadOnlyList<double>)[x]).ToList());
        long[] seq = TestData.Case("llama_gqa").Sequences[0];
        using var expected = merged.Logits(seq);
        using var library = new ExpertLibrary(model, experts);
        using var _ = inference_mode();
        using var ids = tensor(seq).unsqueeze(0);
        using var weights = tensor(w.Select(x => (float)x).ToArray()).unsqueeze(0);
        using var mixing = new FixedMixing(weights);
        using var mixed = model.forward(new DecoderInput(ids, Mixing: mixing)).Logits[0];
        Assert.True((mixed - expected).abs().max().item<float>() < 1e-4);
        foreach (var e in experts) e.Dispose();
    }

    [Fact]
    public void A_recipe_with_a_weight_per_layer_is_a_mergekit_gradient()
    {
        var yaml = ExpertMerge.Recipe("base", ["a", "b"], "linear", null, [[0.1, 0.2], [0.9, 0.8]]);
        Assert.Contains("weight: [0.1, 0.2]", yaml);
        Assert.Contains("weight: [0.9, 0.8]", yaml);
        Assert.Contains("output: model", yaml);
    }
}
