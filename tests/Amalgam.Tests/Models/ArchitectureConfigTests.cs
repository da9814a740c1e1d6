using System.Text.Json.Nodes;
using Amalgam.Models;

namespace Amalgam.Tests.Models;

/// <summary>
/// How each family's config.json is read: per-layer windows and ropes as transformers derives them (including the
/// config classes' defaults for absent fields), the rope-scaling numbers, and the refusals, which name the field.
/// </summary>
public class ArchitectureConfigTests
{
    static DecoderConfig Edited(string golden, Action<JsonObject> edit, TestData.TempDir tmp)
    {
        string dir = tmp[Guid.NewGuid().ToString("N")]; // only config.json: one scratch folder per edit
        Directory.CreateDirectory(dir);
        string file = Path.Combine(dir, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.Golden(golden), "config.json")))!.AsObject();
        edit(json);
        File.WriteAllText(file, json.ToJsonString());
        return DecoderConfig.Load(dir);
    }

    static int?[] Windows(DecoderConfig c) => Enumerable.Range(0, c.NumHiddenLayers).Select(c.LayerWindow).ToArray();

    [Fact]
    public void Layer_windows_follow_each_family()
    {
        Assert.Equal([4, null], Windows(DecoderConfig.Load(TestData.Golden("gemma2"))));          // even layers slide
        Assert.Equal([4, 4, null], Windows(DecoderConfig.Load(TestData.Golden("gemma3"))));       // layer_types
        Assert.Equal([null, 4], Windows(DecoderConfig.Load(TestData.Golden("qwen2_window"))));    // from max_window_layers 1
        Assert.Equal([4, 4], Windows(DecoderConfig.Load(TestData.Golden("mistral_window"))));
        Assert.Equal([null, null], Windows(DecoderConfig.Load(TestData.Golden("qwen3"))));
        using var tmp = new TestData.TempDir();
        // Without layer_types, Gemma 3 slides except every sliding_window_pattern-th layer (default 6).
        Assert.Equal([4, 4, null], Windows(Edited("gemma3", c => c.Remove("layer_types"), tmp)));
        Assert.Equal([4, 4, 4], Windows(Edited("gemma3", c => { c.Remove("layer_types"); c.Remove("sliding_window_pattern"); }, tmp)));
        Assert.Equal([null, null], Windows(Edited("qwen2_window", c => c["use_sliding_window"] = false, tmp)));
    }

    [Fact]
    public void Gemma3_rotates_its_sliding_layers_with_the_local_base_and_no_scaling()
    {
        var c = DecoderConfig.Load(TestData.Golden("gemma3"));
        Assert.Equal([true, true, false], Enumerable.Range(0, 3).Select(c.UsesLocalRope).ToArray());
        Assert.Equal(10000.0, c.LocalRopeTheta);
        Assert.Equal("linear", c.Scaling.Type);
        Assert.False(DecoderConfig.Load(TestData.Golden("gemma2")).HasLocalRope);
    }

    [Fact]
    public void Gemma_is_tied_when_the_field_is_absent_and_other_families_are_not()
    {
        using var tmp = new TestData.TempDir();
        Assert.True(DecoderConfig.Load(TestData.Golden("gemma2")).TieWordEmbeddings);
        Assert.False(Edited("gemma2", c => c["tie_word_embeddings"] = false, tmp).TieWordEmbeddings);
        Assert.False(Edited("llama_gqa", c => c.Remove("tie_word_embeddings"), tmp).TieWordEmbeddings);
        var g2 = DecoderConfig.Load(TestData.Golden("gemma2"));
        Assert.Equal((2.0, 3.0), (g2.AttentionSoftcap, g2.FinalSoftcap));
        Assert.Equal(1 / Math.Sqrt(12), g2.AttentionScale);
        // Gemma 2's config class caps at 50 and 30 when the fields are absent; an explicit null turns capping off.
        var absent = Edited("gemma2", c => { c.Remove("attn_logit_softcapping"); c.Remove("final_logit_softcapping"); }, tmp);
        Assert.Equal((50.0, 30.0), (absent.AttentionSoftcap, absent.FinalSoftcap));
        Assert.Null(DecoderConfig.Load(TestData.Golden("gemma3")).FinalSoftcap);
    }

    [Fact]
    public void Rope_scaling_factors_are_transformers_numbers()
    {
        // yarn: factor 4 → attention factor 0.1·ln 4 + 1; with original 64 positions and 16 rotary dims the ramp runs
        // over pairs 0..3: pair 0 keeps its frequency, pairs ≥ 3 are divided by 4.
        var yarn = new RotaryEmbedding(16, 10000.0, DecoderConfig.Load(TestData.Golden("qwen2_rope_yarn")).Scaling, 256);
        Assert.Equal((float)(0.1 * Math.Log(4) + 1), yarn.AttentionFactor());
        var plain = new RotaryEmbedding(16, 10000.0).InverseFrequencies();
        var f = yarn.InverseFrequencies();
        Assert.Equal(plain[0], f[0]);
        Assert.Equal(plain[1] * (1 - 1 / 3.0) + plain[1] / 4 / 3.0, f[1], 6);
        Assert.Equal(plain[5] / 4, f[5], 6);

        // longrope (Phi-3): short factors up to the 8 original positions, long ones beyond; sqrt(1 + ln 4 / ln 8).
        var phi = DecoderConfig.Load(TestData.Golden("phi3"));
        var longrope = new RotaryEmbedding(phi.RotaryDim, phi.RopeTheta, phi.Scaling, phi.MaxPositionEmbeddings);
        Assert.Equal(12, phi.RotaryDim);
        Assert.Equal((float)Math.Sqrt(1 + Math.Log(4) / Math.Log(8)), longrope.AttentionFactor(9));
        var basic = new RotaryEmbedding(12, phi.RopeTheta).InverseFrequencies();
        Assert.Equal(basic[5] / 3.0f, longrope.InverseFrequencies(8)[5], 6);
        Assert.Equal(basic[5] / 8.0f, longrope.InverseFrequencies(9)[5], 6);

        // dynamic: unchanged up to max_position_embeddings (8), a larger base beyond.
        var dyn = DecoderConfig.Load(TestData.Golden("llama_rope_dynamic"));
        var dynamic = new RotaryEmbedding(8, 10000.0, dyn.Scaling, 8);
        Assert.Equal(new RotaryEmbedding(8, 10000.0).InverseFrequencies(), dynamic.InverseFrequencies(8));
        double b14 = 10000.0 * Math.Pow(2.0 * 14 / 8 - 1, 8 / 6.0);
        Assert.Equal((float)(1 / Math.Pow(b14, 0.25)), dynamic.InverseFrequencies(14)[1], 6);

        // llama3 (factor 8, low 1, high 8, original 256): wavelengths 6.3 and 63 are kept and smoothed, 628+ divided.
        var l3 = new RotaryEmbedding(8, 10000.0, DecoderConfig.Load(TestData.Golden("llama_rope_llama3")).Scaling);
        var l3f = l3.InverseFrequencies();
        double smooth = (256 / (2 * Math.PI / 0.1) - 1) / (8 - 1);
        Assert.Equal(1.0f, l3f[0]);
        Assert.Equal((float)((1 - smooth) * 0.1 / 8 + smooth * 0.1), l3f[1], 6);
        Assert.Equal(0.01f / 8, l3f[2], 6);
    }

    [Theory]
    [InlineData("llama_gqa", "rope_scaling", "{\"rope_type\": \"linear\"}", "rope_scaling.factor")]
    [InlineData("llama_gqa", "rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": -2}", "rope_scaling.factor")]
    [InlineData("llama_gqa", "rope_scaling", "{\"rope_type\": \"su\"}", "rope_scaling.rope_type")]
    [InlineData("llama_gqa", "rope_scaling", "{\"factor\": 2.0}", "rope_scaling.rope_type")]
    [InlineData("llama_gqa", "partial_rotary_factor", "0.5", "partial_rotary_factor")]
    [InlineData("phi3", "rope_scaling", "{\"type\": \"longrope\", \"short_factor\": [1, 1], \"long_factor\": [1, 1]}", "rope_scaling.short_factor")]
    [InlineData("gemma2", "hidden_activation", "\"gelu\"", "hidden_activation")]
    [InlineData("qwen3", "hidden_act", "\"gelu_pytorch_tanh\"", "hidden_act")]
    [InlineData("gemma3", "layer_types", "[\"sliding_attention\", \"full_attention\"]", "layer_types")]
    [InlineData("gemma3", "layer_types", "[\"chunked_attention\", \"full_attention\", \"full_attention\"]", "layer_types")]
    [InlineData("gemma2", "sliding_window", "0", "sliding_window")]
    [InlineData("gemma2", "query_pre_attn_scalar", "-1", "query_pre_attn_scalar")]
    public void Unsupported_or_invalid_fields_are_refused_naming_them(string golden, string field, string value, string named)
    {
        using var tmp = new TestData.TempDir();
        var e = Assert.ThrowsAny<Exception>(() => Edited(golden, c => c[field] = JsonNode.Parse(value), tmp));
        Assert.True(e is InvalidDataException or NotSupportedException, e.GetType().Name);
        Assert.Contains($"config.json: {named}: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
