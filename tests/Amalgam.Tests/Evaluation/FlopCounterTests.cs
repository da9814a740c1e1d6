using Amalgam.Evaluation;
using System.Text.Json;
using Amalgam.Models;
using Amalgam.Study;

namespace Amalgam.Tests.Evaluation;

/// <summary>
/// Exact counts on a hand-made config: hidden 8, intermediate 20, 2 heads of 4, 1 key/value head, 3 layers,
/// vocabulary 11. Per layer: q 2·8·8 = 128, k = v = 2·8·4 = 64, o = 128, gate = up = down = 2·8·20 = 320:
/// 1344 FLOPs of linear layers; attention 2·2·(2 heads·4)·L = 32·L; output layer 2·8·11 = 176.
/// </summary>
public class FlopCounterTests
{
    internal static DecoderConfig Config(bool tied = true, int? window = null)
    {
        var c = new DecoderConfig
        {
            Architectures = [window is null ? "LlamaForCausalLM" : "MistralForCausalLM"], VocabSize = 11, HiddenSize = 8, IntermediateSize = 20,
            NumHiddenLayers = 3, NumAttentionHeads = 2, NumKeyValueHeads = 1, TieWordEmbeddings = tied, SlidingWindow = window,
        };
        c.Validate();
        return c;
    }

    [Fact]
    public void ModuleShapesFollowTheNames()
    {
        var c = Config();
        Assert.Equal((8L, 8L), FlopCounter.ModuleShape(c, "model.layers.2.self_attn.q_proj"));
        Assert.Equal((8L, 4L), FlopCounter.ModuleShape(c, "model.layers.0.self_attn.k_proj"));
        Assert.Equal((8L, 4L), FlopCounter.ModuleShape(c, "v_proj"));
        Assert.Equal((8L, 8L), FlopCounter.ModuleShape(c, "o_proj"));
        Assert.Equal((8L, 20L), FlopCounter.ModuleShape(c, "model.layers.1.mlp.gate_proj"));
        Assert.Equal((8L, 20L), FlopCounter.ModuleShape(c, "up_proj"));
        Assert.Equal((20L, 8L), FlopCounter.ModuleShape(c, "model.layers.1.mlp.down_proj"));
        Assert.Equal((8L, 11L), FlopCounter.ModuleShape(c, "lm_head"));
        Assert.Contains("'model.norm'", Assert.Throws<ArgumentException>(() => FlopCounter.ModuleShape(c, "model.norm")).Message);
    }

    [Fact]
    public void ForwardCountsByHand()
    {
        var c = Config();
        Assert.Equal(1344, FlopCounter.LayerLinearFlopsPerToken(c));
        Assert.Equal(32 * 5.0, FlopCounter.AttentionFlopsPerToken(c, 5));
        Assert.Equal(176, FlopCounter.LmHeadFlopsPerToken(c));
        // 3·(1344 + 32·5) + 176
        Assert.Equal(4688, FlopCounter.ForwardFlopsPerToken(c, 5));
        Assert.Equal(4512, FlopCounter.ForwardFlopsPerToken(c, 5, withLmHead: false));
    }

    [Fact]
    public void MeanAttendedPositionsCountsTheCausalTriangle()
    {
        Assert.Equal(5, FlopCounter.MeanAttendedPositions(9));
        Assert.Equal(0, FlopCounter.MeanAttendedPositions(0));
        // window 4 over 10 positions: 1, 2, 3, 4, 4, 4, 4, 4, 4, 4
        Assert.Equal(3.4, FlopCounter.MeanAttendedPositions(10, 4), 12);
        Assert.Equal(2.5, FlopCounter.MeanAttendedPositions(4, 4), 12);
    }

    [Fact]
    public void LoraCountsByHand()
    {
        var c = Config();
        Assert.Equal(2 * 2 * (20 + 8), FlopCounter.LoraFlopsPerToken(c, "model.layers.0.mlp.down_proj", 2));
        var all = FlopCounter.AllLinearModules(c, 2);
        Assert.Equal(21, all.Count);
        Assert.Contains("model.layers.2.mlp.down_proj", all.Keys);
        // per layer: q 2·2·16 = 64, k = v = 2·2·12 = 48, o = 64, gate = up = down = 2·2·28 = 112 -> 560; 3 layers
        Assert.Equal(1680, FlopCounter.LoraFlopsPerToken(c, all));
        // parameters r·(in + out): 32 + 24 + 24 + 32 + 3·56 = 280 per layer
        Assert.Equal(840, FlopCounter.LoraParameters(c, all));
        Assert.Throws<ArgumentException>(() => FlopCounter.LoraFlopsPerToken(c, "q_proj", 0));
    }

    [Fact]
    public void ParametersCountByHand()
    {
        // embeddings 11·8 = 88; per layer 64 + 32 + 32 + 64 + 3·160 = 672 plus two norms of 8; final norm 8
        Assert.Equal(88 + 3 * 688 + 8, FlopCounter.Parameters(Config()));
        Assert.Equal(2 * 88 + 3 * 688 + 8, FlopCounter.Parameters(Config(tied: false)));
    }

    [Fact]
    public void ParametersMatchTheBundledBaseModel()
    {
        string dir = Path.Combine(TestData.RepoRoot, "suite", "base");
        var config = DecoderConfig.Load(dir);
        using var model = CheckpointLoader.Load(dir);
        long actual = model.parameters().Sum(p => p.numel());
        Assert.Equal(actual, FlopCounter.Parameters(config));
    }

    /// <summary>Example: 6 prompt + 3 answer tokens, so N = 9 and tokens attend to 5 positions on average.</summary>
    [Fact]
    public void CostModelComposesTheParts()
    {
        var c = Config();
        var cost = new CostModel(c, FlopCounter.AllLinearModules(c, 2), promptTokens: 6, answerTokens: 3);
        Assert.Equal(4688, cost.ForwardPerToken);
        Assert.Equal(1680, cost.LoraPerToken);
        Assert.Equal(9 * 4688, cost.Base());
        Assert.Equal(cost.Base(), cost.FoldedMerge());
        Assert.Equal(1.0, cost.Relative(cost.FoldedMerge()));
        Assert.Equal(9 * (4688 + 2 * 1680), cost.Loras(2));
        Assert.Equal(3 * 9 * (4688 + 1680), cost.Ensemble(3));
        Assert.Equal(3 * 9 * 4688, cost.Ensemble(3, foldedExperts: true));
        // prompt of 6 attends to 3.5 positions on average: 3·(1344 + 32·3.5) = 4368 per token, no output layer
        Assert.Equal(6 * 4368, cost.PromptFeatures());
        Assert.Equal(2 * 8 * 16 + 2 * 16 * 4, cost.RouterMlp([8, 16, 4]));
        Assert.Equal(2 * 4 * 8, cost.CentroidScores(4));
        // module inputs per layer: 8 (q, k, v, o, gate, up) ·6 + 20 (down) = 68; 3 layers; 2·K = 8; 9 tokens
        Assert.Equal(9 * 8 * 3 * 68, cost.ArrowScores(4));
        // Σ r·in·out per layer = 2·(64 + 32 + 32 + 64 + 3·160) = 1344; ·2 FLOPs ·3 layers ·4 experts
        Assert.Equal(4 * 3 * 2 * 1344, cost.DynamicMerge(4));

        Assert.Equal(6 * 4368 + 384 + 9 * (4688 + 1680), cost.LearnedRouter(1, [8, 16, 4]));
        Assert.Equal(6 * 4368 + 64 + 9 * (4688 + 2 * 1680), cost.CentroidRouter(4, 2));
        Assert.Equal(9 * 8 * 3 * 68 + 9 * (4688 + 1680), cost.ArrowRouter(4, 1));
        Assert.Equal(6 * 4368 + 384 + 32256 + 9 * 4688, cost.TwinMergingMaterialised(4, [8, 16, 4]));
        // factored: 4 exclusive parts of rank 1 at every token, each half an expert's rank-2 LoRA (1680 / 2 = 840)
        Assert.Equal(6 * 4368 + 384 + 9 * (4688 + 4 * 840), cost.TwinMerging(4, [8, 16, 4], exclusiveRank: 1, expertRank: 2));
        Assert.Equal(6 * 4368 + 384 + 9 * (4688 + 4 * 1680), cost.TwinMerging(4, [8, 16, 4], exclusiveRank: 2, expertRank: 2));
        Assert.Equal((9.0 * (4688 + 2 * 1680)) / (9 * 4688), cost.Relative(cost.Loras(2)), 12);
    }

    [Fact]
    public void SlidingWindowCapsTheAttendedPositions()
    {
        var c = Config(window: 4);
        var cost = new CostModel(c, FlopCounter.AllLinearModules(c, 2), promptTokens: 7, answerTokens: 3);
        Assert.Equal(3 * (1344 + 32 * 3.4) + 176, cost.ForwardPerToken, 9);
    }

    [Fact]
    public void BadArgumentsAreRefused()
    {
        var c = Config();
        var modules = FlopCounter.AllLinearModules(c, 2);
        Assert.Throws<ArgumentException>(() => new CostModel(c, modules, 0, 0));
        Assert.Throws<ArgumentException>(() => new CostModel(c, modules, -1, 3));
        var cost = new CostModel(c, modules, 6, 3);
        Assert.Throws<ArgumentException>(() => cost.Loras(0));
        Assert.Throws<ArgumentException>(() => cost.RouterMlp([8]));
    }
}
