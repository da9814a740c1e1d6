using System.Text.Json.Nodes;
using Amalgam.Models;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Tests.Models;

/// <summary>Configs and checkpoints the decoder cannot run exactly are refused, naming the field or tensor.</summary>
public class CheckpointRefusalTests
{
    static void EditConfig(string dir, Action<JsonObject> edit)
    {
        string file = Path.Combine(dir, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        edit(json);
        File.WriteAllText(file, json.ToJsonString());
    }

    static Exception Refusal(string golden, Action<JsonObject> edit)
    {
        using var tmp = new TestData.TempDir();
        string dir = TestData.CopyOf(golden, tmp);
        EditConfig(dir, edit);
        var e = Assert.ThrowsAny<Exception>(() => CheckpointLoader.Load(dir).Dispose());
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("config.json", e.Message);
        return e;
    }

    [Theory]
    [InlineData("rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0}", "rope_scaling.low_freq_factor")]
    [InlineData("rope_scaling", "{\"type\": \"mrope\", \"mrope_section\": [2, 1, 1]}", "rope_scaling.rope_type")]
    [InlineData("hidden_act", "\"gelu\"", "hidden_act")]
    [InlineData("architectures", "[\"BertForMaskedLM\"]", "architectures")] // GPT2LMHeadModel until GPT-2 joined the decoder
    [InlineData("model_type", "\"mistral\"", "model_type")]
    [InlineData("num_key_value_heads", "3", "num_key_value_heads")]
    [InlineData("hidden_size", "-4", "hidden_size")]
    [InlineData("vocab_size", "\"many\"", "vocab_size")]
    public void Unsupported_or_invalid_configs_are_refused_naming_the_field(string field, string value, string named)
    {
        var e = Refusal("llama_gqa", c => c[field] = JsonNode.Parse(value));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void A_default_rope_scaling_is_accepted()
    {
        using var tmp = new TestData.TempDir();
        string dir = TestData.CopyOf("llama_gqa", tmp);
        EditConfig(dir, c => c["rope_scaling"] = JsonNode.Parse("{\"rope_type\": \"default\"}"));
        CheckpointLoader.Load(dir).Dispose();
    }

    [Fact]
    public void A_sliding_window_changes_only_the_positions_past_it()
    {
        // Formerly refused; now computed. Within the window the logits equal global attention's, past it they differ.
        using var tmp = new TestData.TempDir();
        string dir = TestData.CopyOf("mistral", tmp);
        EditConfig(dir, c => c["sliding_window"] = 4);
        using var windowed = CheckpointLoader.Load(dir);
        using var global = CheckpointLoader.Load(TestData.Golden("mistral"));
        using var a = windowed.Logits([5, 6, 7, 8, 9, 10]);
        using var b = global.Logits([5, 6, 7, 8, 9, 10]);
        Assert.True(a.narrow(0, 0, 4).allclose(b.narrow(0, 0, 4), rtol: 0, atol: 1e-6));
        Assert.True((a[4] - b[4]).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void Qwen2_ignores_the_sliding_window_unless_use_sliding_window_is_set()
    {
        var config = DecoderConfig.Load(TestData.Golden("qwen2_tied"));
        Assert.Null(config.EffectiveSlidingWindow);
    }

    static void Rewrite(string file, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>> change) =>
        TestData.RewriteSafetensors(file, change);

    [Fact]
    public void Missing_and_unexpected_keys_are_listed()
    {
        using var tmp = new TestData.TempDir();
        string dir = TestData.CopyOf("llama_gqa", tmp);
        Rewrite(Path.Combine(dir, "model.safetensors"), t =>
        {
            t["model.layers.1.mlp.up_proj.weightt"] = t["model.layers.1.mlp.up_proj.weight"];
            t.Remove("model.layers.1.mlp.up_proj.weight");
            t.Remove("model.norm.weight");
            return t;
        });
        var e = Assert.Throws<InvalidDataException>(() => CheckpointLoader.Load(dir));
        Assert.Contains("2 missing (model.layers.1.mlp.up_proj.weight, model.norm.weight)", e.Message);
        Assert.Contains("1 unexpected (model.layers.1.mlp.up_proj.weightt)", e.Message);
    }

    [Fact]
    public void A_tensor_of_the_wrong_shape_is_named()
    {
        using var tmp = new TestData.TempDir();
        string dir = TestData.CopyOf("llama_gqa", tmp);
        Rewrite(Path.Combine(dir, "model.safetensors"), t => { t["model.layers.0.self_attn.k_proj.weight"] = zeros(32, 32); return t; });
        var e = Assert.Throws<InvalidDataException>(() => CheckpointLoader.Load(dir));
        Assert.Contains("'model.layers.0.self_attn.k_proj.weight' has shape [32, 32]", e.Message);
    }

    [Fact]
    public void Old_rotary_buffers_are_ignored_as_transformers_does()
    {
        using var tmp = new TestData.TempDir();
        string dir = TestData.CopyOf("llama_gqa", tmp);
        Rewrite(Path.Combine(dir, "model.safetensors"), t => { t["model.layers.0.self_attn.rotary_emb.inv_freq"] = ones(4); return t; });
        CheckpointLoader.Load(dir).Dispose();
    }

    [Fact]
    public void Rotary_frequencies_follow_rope_theta()
    {
        var rope = new RotaryEmbedding(rotaryDim: 8, theta: 500000.0);
        var f = rope.InverseFrequencies();
        Assert.Equal(4, f.Length);
        Assert.Equal(1.0f, f[0]);
        Assert.Equal((float)(1.0 / Math.Pow(500000.0, 0.25)), f[1]);
        Assert.Equal((float)(1.0 / Math.Pow(500000.0, 0.75)), f[3]);
    }
}
