using System.Text.Json;
using Amalgam.Evaluation;
using Amalgam.Models;
using Amalgam.Routing;
using Amalgam.Tests.Evaluation;
using static TorchSharp.torch;

namespace Amalgam.Tests.Routing;

public class FeatureSourceTests
{
    [Theory]
    [InlineData("final", null)]
    [InlineData("embeddings", 0)]
    [InlineData("layer-1", 1)]
    [InlineData("layer-12", 12)]
    public void Parses_and_prints_its_names(string text, int? layers)
    {
        var source = FeatureSource.Parse(text);
        Assert.Equal(layers, source.Layers);
        Assert.Equal(text, source.ToString());
    }

    [Theory]
    [InlineData("layer-0")]
    [InlineData("layer-")]
    [InlineData("layer--1")]
    [InlineData("Final")]
    [InlineData("embedding")]
    public void Refuses_other_names(string text) =>
        Assert.Contains($"'{text}'", Assert.Throws<ArgumentException>(() => FeatureSource.Parse(text)).Message);

    [Fact]
    public void Default_is_the_full_pass() => Assert.Equal(FeatureSource.Final, default);

    /// <summary>
    /// Mean-pooled features per source against tests/Golden/router_features.py (generate.py's float64 forward, stopped
    /// after k layers with the final norm left out), in one padded batch.
    /// </summary>
    [Fact]
    public void Features_match_the_reference_for_every_source()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.RepoRoot, "tests", "Golden", "data", "router_features.json")));
        var prompts = doc.RootElement.GetProperty("prompts").EnumerateArray().Select(p => (IReadOnlyList<long>)p.EnumerateArray().Select(v => v.GetInt64()).ToList()).ToList();
        using var scope = NewDisposeScope();
        foreach (var source in doc.RootElement.GetProperty("features").EnumerateObject())
        {
            var expected = source.Value.EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
            var got = PromptFeatures.MeanPooled(model, prompts, padId: 0, source: FeatureSource.Parse(source.Name));
            Assert.Equal(new long[] { prompts.Count, model.Config.HiddenSize }, got.shape);
            var flat = got.to(ScalarType.Float64).data<double>().ToArray();
            double max = 0;
            for (int i = 0; i < prompts.Count; i++)
                for (int j = 0; j < expected[i].Length; j++) max = Math.Max(max, Math.Abs(flat[i * expected[i].Length + j] - expected[i][j]));
            Assert.True(max < 2e-5, $"{source.Name}: max |Δ| = {max}");
        }
        // The three sources differ: each is a different read of the model.
        var a = PromptFeatures.MeanPooled(model, prompts, 0, source: FeatureSource.Embeddings);
        var b = PromptFeatures.MeanPooled(model, prompts, 0, source: FeatureSource.AfterLayer(1));
        Assert.True((a - b).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void A_layer_beyond_the_model_is_refused()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var e = Assert.Throws<ArgumentException>(() => PromptFeatures.MeanPooled(model, [[1L, 2L]], 0, source: FeatureSource.AfterLayer(3)));
        Assert.Contains("'layer-3'", e.Message);
        Assert.Contains("only 2 layers", e.Message);
    }

    /// <summary>
    /// The one formula for a feature source's cost, on FlopCounterTests' hand-made config (3 layers; a 6-token
    /// prompt attends to 3.5 positions on average: 1344 + 32·3.5 = 1456 FLOPs per token per layer): P·k·1456.
    /// </summary>
    [Fact]
    public void Cost_is_the_layers_it_runs_over_the_prompt()
    {
        var c = FlopCounterTests.Config();
        var cost = new CostModel(c, FlopCounter.AllLinearModules(c, 2), promptTokens: 6, answerTokens: 3);
        Assert.Equal(6 * 3 * 1456, cost.PromptFeatures());
        Assert.Equal(6 * 3 * 1456, cost.PromptFeatures(FeatureSource.Final));
        Assert.Equal(6 * 2 * 1456, cost.PromptFeatures(FeatureSource.AfterLayer(2)));
        Assert.Equal(6 * 1 * 1456, cost.PromptFeatures(FeatureSource.AfterLayer(1)));
        Assert.Equal(0, cost.PromptFeatures(FeatureSource.Embeddings));
        Assert.Throws<ArgumentException>(() => cost.PromptFeatures(FeatureSource.AfterLayer(4)));
        // The router with embeddings costs its MLP and LoRAs alone: 384 + 9·(4688 + 1680).
        Assert.Equal(384 + 9 * (4688 + 1680), cost.LearnedRouter(1, [8, 16, 4], FeatureSource.Embeddings));
        Assert.Equal(6 * 1456 + 64 + 9 * (4688 + 1680), cost.CentroidRouter(4, 1, FeatureSource.AfterLayer(1)));
    }
}
