using Amalgam.Models;
using Amalgam.Routing;
using static TorchSharp.torch;

namespace Amalgam.Tests.Routing;

public class PromptFeaturesTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(2)]
    public void Mean_pooled_features_of_a_padded_batch_equal_each_prompt_alone(int batchSize)
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var prompts = TestData.Case("llama_gqa").Sequences.Concat([[5L], [3L, 9L]]).Select(s => (IReadOnlyList<long>)s).ToList();
        using var scope = NewDisposeScope();
        var features = PromptFeatures.MeanPooled(model, prompts, padId: 0, batchSize);
        Assert.Equal(new long[] { prompts.Count, model.Config.HiddenSize }, features.shape);
        Assert.Equal(ScalarType.Float32, features.dtype);
        using var inference = inference_mode();
        for (int i = 0; i < prompts.Count; i++)
        {
            var alone = model.HiddenStates(new DecoderInput(tensor(prompts[i].ToArray()).unsqueeze(0)))[0].to(ScalarType.Float64).mean([0]);
            double diff = (features[i].to(ScalarType.Float64) - alone).abs().max().item<double>();
            Assert.True(diff < 1e-5, $"prompt {i} (batch {batchSize}): max |Δ| = {diff}");
        }
    }

    [Fact]
    public void Mean_pooling_leaves_no_live_tensors_behind()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var prompts = TestData.Case("llama_gqa").Sequences.Select(s => (IReadOnlyList<long>)s).ToList();
        PromptFeatures.MeanPooled(model, prompts, 0, 2).Dispose(); // warm-up
        long before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        PromptFeatures.MeanPooled(model, prompts, 0, 2).Dispose();
        Assert.Equal(before, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void An_empty_prompt_is_refused_by_index()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var e = Assert.Throws<ArgumentException>(() => PromptFeatures.MeanPooled(model, [[1L, 2L], []], 0));
        Assert.Contains("prompt 1", e.Message);
    }
}
