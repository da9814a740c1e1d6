using System.Text.Json;
using Amalgam.Models;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Tests.Models;

/// <summary>
/// GPT2LMHeadModel in the decoder against tests/Golden/gpt2/generate.py, an independent float64 forward written from GPT-2's
/// architecture (learned positions, LayerNorm with bias, Conv1D weights [in, out], fused c_attn, gelu_new, tied
/// lm_head) on a tiny random checkpoint: 3 layers, n_embd 32, 4 heads, 16 positions, vocab 64.
/// </summary>
public class Gpt2Tests
{
    static string Gpt2(string name) => Path.Combine(TestData.RepoRoot, "tests", "Golden", "gpt2", name);

    sealed record Case(long[] Ids, float[][] Logits, long[] Greedy);

    static List<Case> Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Gpt2("cases.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
            c.GetProperty("ids").Deserialize<long[]>()!, c.GetProperty("logits").Deserialize<float[][]>()!, c.GetProperty("greedy").Deserialize<long[]>()!)).ToList();
    }

    [Fact]
    public void Logits_match_the_reference_forward_within_1e_5()
    {
        using var model = CheckpointLoader.Load(Gpt2("model"));
        Assert.Equal("GPT2LMHeadModel", model.Config.Architecture);
        foreach (var c in Cases())
        {
            using var logits = model.Logits(c.Ids);
            using var expected = tensor(c.Logits.SelectMany(r => r).ToArray(), [c.Logits.Length, c.Logits[0].Length]);
            double diff = (logits.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max().item<double>();
            Assert.True(diff < 1e-5, $"largest |Amalgam − reference| = {diff:G3}");
        }
    }

    [Fact]
    public void Greedy_generation_through_the_cache_matches_the_reference()
    {
        using var model = CheckpointLoader.Load(Gpt2("model"));
        foreach (var c in Cases())
            Assert.Equal(c.Greedy, GreedyDecoder.Generate(model, [c.Ids], maxNewTokens: c.Greedy.Length)[0]);
    }

    [Fact]
    public void Config_reads_gpt2_names_and_counts_every_weight()
    {
        var config = DecoderConfig.Load(Gpt2("model"));
        Assert.Equal((32, 3, 4, 16, 128, 1e-5, true), (config.HiddenSize, config.NumHiddenLayers, config.NumAttentionHeads, config.MaxPositionEmbeddings, config.IntermediateSize, config.RmsNormEps, config.TieWordEmbeddings));
        using var model = new CausalLM(config, ScalarType.Float32);
        Assert.Equal(model.parameters().Sum(p => p.numel()), config.ParameterCount);
        using var store = TensorStore.Open(Gpt2("model"));
        Assert.Equal(store.Names.Sum(n => store.Info(n).Shape.Aggregate(1L, (a, b) => a * b)), config.ParameterCount);
    }

    [Fact]
    public void The_original_unprefixed_names_load_too_and_give_the_same_logits()
    {
        using var dir = new TestData.TempDir();
        Directory.CreateDirectory(dir["plain"]);
        File.Copy(Path.Combine(Gpt2("model"), "config.json"), Path.Combine(dir["plain"], "config.json"));
        using (var store = TensorStore.Open(Gpt2("model")))
        using (var scope = NewDisposeScope())
        {
            var tensors = store.Names.ToDictionary(n => n["transformer.".Length..], n => store.Load(n));
            tensors["h.0.attn.bias"] = ones(1, 1, 16, 16).tril(); // the causal-mask buffer old checkpoints carry
            SafeTensorsWriter.Save(Path.Combine(dir["plain"], "model.safetensors"), tensors);
        }
        using var a = CheckpointLoader.Load(Gpt2("model"));
        using var b = CheckpointLoader.Load(dir["plain"]);
        using var la = a.Logits([3, 9, 27]);
        using var lb = b.Logits([3, 9, 27]);
        Assert.True(la.equal(lb).all().item<bool>());
    }

    [Theory]
    [InlineData("activation_function", "\"relu\"", "activation_function: activation 'relu' is not implemented for GPT2LMHeadModel (expected 'gelu_new')")]
    [InlineData("n_head", "5", "n_head: n_embd 32 is not divisible by 5 heads")]
    public void A_gpt2_config_it_cannot_compute_is_refused_naming_the_field(string field, string value, string expected)
    {
        using var dir = new TestData.TempDir();
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Gpt2("model"), "config.json")))!.AsObject();
        config[field] = System.Text.Json.Nodes.JsonNode.Parse(value);
        File.WriteAllText(dir["config.json"], config.ToJsonString());
        var e = Assert.ThrowsAny<Exception>(() => DecoderConfig.Load(dir["config.json"]));
        Assert.EndsWith(expected, e.Message);
    }
}
