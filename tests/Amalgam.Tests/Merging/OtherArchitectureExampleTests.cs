using System.Text.Json;
using System.Text.Json.Nodes;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

/// <summary>
/// mergekit's example recipes for architectures beside the Llama-like decoders (GPT-2, which Amalgam also runs;
/// Qwen2-VL, Florence-2 and Whisper, which it merges but does not run), unchanged but for the model names, on tiny checkpoints synthesised here with the tensor names and
/// config fields the real models have; and how the layer stacks of each family set depth, slices and refusals.
/// </summary>
public class OtherArchitectureExampleTests
{
    const int V = 64;

    static Dictionary<string, long[]> Gpt2(int layers, int e = 16, int positions = 32)
    {
        var t = new Dictionary<string, long[]> { ["wte.weight"] = [V, e], ["wpe.weight"] = [positions, e], ["ln_f.weight"] = [e], ["ln_f.bias"] = [e] };
        for (int i = 0; i < layers; i++)
        {
            string h = $"h.{i}.";
            foreach (var n in new[] { "ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias", "attn.c_proj.bias", "mlp.c_proj.bias" }) t[h + n] = [e];
            t[h + "attn.c_attn.weight"] = [e, 3 * e]; // Conv1D: [in, out]
            t[h + "attn.c_attn.bias"] = [3 * e];
            t[h + "attn.c_proj.weight"] = [e, e];
            t[h + "mlp.c_fc.weight"] = [e, 4 * e];
            t[h + "mlp.c_fc.bias"] = [4 * e];
            t[h + "mlp.c_proj.weight"] = [4 * e, e];
        }
        return t;
    }

    static JsonObject Gpt2Config(int layers) => new()
    {
        ["architectures"] = new JsonArray("GPT2LMHeadModel"), ["model_type"] = "gpt2", ["n_layer"] = layers, ["n_embd"] = 16, ["n_head"] = 2,
        ["n_positions"] = 32, ["n_inner"] = null, ["vocab_size"] = V, ["layer_norm_epsilon"] = 1e-5, ["activation_function"] = "gelu_new", ["torch_dtype"] = "float32",
    };

    static Dictionary<string, long[]> Qwen2Vl(int layers, int depth, int h = 16, int embed = 8)
    {
        var t = new Dictionary<string, long[]>
        {
            ["model.embed_tokens.weight"] = [V, h], ["model.norm.weight"] = [h], ["lm_head.weight"] = [V, h],
            ["visual.patch_embed.proj.weight"] = [embed, 3, 2, 2, 2], ["visual.merger.ln_q.weight"] = [embed], ["visual.merger.ln_q.bias"] = [embed],
            ["visual.merger.mlp.0.weight"] = [4 * embed, 4 * embed], ["visual.merger.mlp.0.bias"] = [4 * embed],
            ["visual.merger.mlp.2.weight"] = [h, 4 * embed], ["visual.merger.mlp.2.bias"] = [h],
        };
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            t[p + "input_layernorm.weight"] = [h];
            t[p + "post_attention_layernorm.weight"] = [h];
            t[p + "self_attn.q_proj.weight"] = [h, h];
            t[p + "self_attn.q_proj.bias"] = [h];
            t[p + "self_attn.k_proj.weight"] = [h / 2, h];
            t[p + "self_attn.k_proj.bias"] = [h / 2];
            t[p + "self_attn.v_proj.weight"] = [h / 2, h];
            t[p + "self_attn.v_proj.bias"] = [h / 2];
            t[p + "self_attn.o_proj.weight"] = [h, h];
            t[p + "mlp.gate_proj.weight"] = [24, h];
            t[p + "mlp.up_proj.weight"] = [24, h];
            t[p + "mlp.down_proj.weight"] = [h, 24];
        }
        for (int i = 0; i < depth; i++)
        {
            string p = $"visual.blocks.{i}.";
            foreach (var n in new[] { "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "attn.proj.bias", "mlp.fc2.bias" }) t[p + n] = [embed];
            t[p + "attn.qkv.weight"] = [3 * embed, embed];
            t[p + "attn.qkv.bias"] = [3 * embed];
            t[p + "attn.proj.weight"] = [embed, embed];
            t[p + "mlp.fc1.weight"] = [2 * embed, embed];
            t[p + "mlp.fc1.bias"] = [2 * embed];
            t[p + "mlp.fc2.weight"] = [embed, 2 * embed];
        }
        return t;
    }

    static JsonObject Qwen2VlConfig(int layers, int depth) => new()
    {
        ["architectures"] = new JsonArray("Qwen2VLForConditionalGeneration"), ["model_type"] = "qwen2_vl", ["hidden_size"] = 16, ["intermediate_size"] = 24,
        ["num_hidden_layers"] = layers, ["num_attention_heads"] = 2, ["num_key_value_heads"] = 1, ["vocab_size"] = V, ["rms_norm_eps"] = 1e-6, ["torch_dtype"] = "float32",
        ["vision_config"] = new JsonObject { ["depth"] = depth, ["embed_dim"] = 8, ["hidden_size"] = 16, ["num_heads"] = 2, ["mlp_ratio"] = 2, ["spatial_merge_size"] = 2, ["temporal_patch_size"] = 2, ["patch_size"] = 2 },
    };

    static void Attention(Dictionary<string, long[]> t, string p, int d, bool kBias)
    {
        foreach (var proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
        {
            t[$"{p}.{proj}.weight"] = [d, d];
            if (proj != "k_proj" || kBias) t[$"{p}.{proj}.bias"] = [d];
        }
    }

    static void Block(Dictionary<string, long[]> t, string p, int d, int ffn, bool cross, bool kBias)
    {
        Attention(t, p + "self_attn", d, kBias);
        if (cross) { Attention(t, p + "encoder_attn", d, kBias); t[p + "encoder_attn_layer_norm.weight"] = [d]; t[p + "encoder_attn_layer_norm.bias"] = [d]; }
        foreach (var n in new[] { "self_attn_layer_norm", "final_layer_norm" }) { t[$"{p}{n}.weight"] = [d]; t[$"{p}{n}.bias"] = [d]; }
        t[p + "fc1.weight"] = [ffn, d];
        t[p + "fc1.bias"] = [ffn];
        t[p + "fc2.weight"] = [d, ffn];
        t[p + "fc2.bias"] = [d];
    }

    /// <summary>WhisperForConditionalGeneration as save_pretrained writes it (proj_out tied to the decoder's embed_tokens, not stored).</summary>
    static Dictionary<string, long[]> Whisper(int layers, int d = 16, int mel = 8)
    {
        var t = new Dictionary<string, long[]>
        {
            ["model.encoder.conv1.weight"] = [d, mel, 3], ["model.encoder.conv1.bias"] = [d], ["model.encoder.conv2.weight"] = [d, d, 3], ["model.encoder.conv2.bias"] = [d],
            ["model.encoder.embed_positions.weight"] = [8, d], ["model.encoder.layer_norm.weight"] = [d], ["model.encoder.layer_norm.bias"] = [d],
            ["model.decoder.embed_tokens.weight"] = [V, d], ["model.decoder.embed_positions.weight"] = [16, d], ["model.decoder.layer_norm.weight"] = [d], ["model.decoder.layer_norm.bias"] = [d],
        };
        for (int i = 0; i < layers; i++)
        {
            Block(t, $"model.encoder.layers.{i}.", d, 32, cross: false, kBias: false);
            Block(t, $"model.decoder.layers.{i}.", d, 32, cross: true, kBias: false);
        }
        return t;
    }

    static JsonObject WhisperConfig(int layers) => new()
    {
        ["architectures"] = new JsonArray("WhisperForConditionalGeneration"), ["model_type"] = "whisper", ["d_model"] = 16, ["encoder_layers"] = layers, ["decoder_layers"] = layers,
        ["num_hidden_layers"] = layers, ["encoder_attention_heads"] = 2, ["decoder_attention_heads"] = 2, ["encoder_ffn_dim"] = 32, ["decoder_ffn_dim"] = 32,
        ["num_mel_bins"] = 8, ["max_source_positions"] = 8, ["max_target_positions"] = 16, ["vocab_size"] = V, ["tie_word_embeddings"] = true, ["torch_dtype"] = "float32",
    };

    /// <summary>Florence2ForConditionalGeneration: a BART-like language model beside the DaViT vision tower (a few of its tensors).</summary>
    static Dictionary<string, long[]> Florence(int layers, int d = 16)
    {
        var t = new Dictionary<string, long[]>
        {
            ["language_model.model.shared.weight"] = [V, d], ["language_model.lm_head.weight"] = [V, d], ["language_model.final_logits_bias"] = [1, V],
            ["language_model.model.encoder.embed_positions.weight"] = [34, d], ["language_model.model.decoder.embed_positions.weight"] = [34, d],
            ["language_model.model.encoder.layernorm_embedding.weight"] = [d], ["language_model.model.encoder.layernorm_embedding.bias"] = [d],
            ["language_model.model.decoder.layernorm_embedding.weight"] = [d], ["language_model.model.decoder.layernorm_embedding.bias"] = [d],
            ["image_projection"] = [8, d], ["image_proj_norm.weight"] = [d], ["image_proj_norm.bias"] = [d],
            ["vision_tower.convs.0.proj.weight"] = [8, 3, 3, 3], ["vision_tower.convs.0.proj.bias"] = [8],
        };
        for (int i = 0; i < layers; i++)
        {
            Block(t, $"language_model.model.encoder.layers.{i}.", d, 32, cross: false, kBias: true);
            Block(t, $"language_model.model.decoder.layers.{i}.", d, 32, cross: true, kBias: true);
        }
        return t;
    }

    static JsonObject FlorenceConfig(int layers) => new()
    {
        ["architectures"] = new JsonArray("Florence2ForConditionalGeneration"), ["model_type"] = "florence2", ["torch_dtype"] = "float32",
        ["text_config"] = new JsonObject { ["model_type"] = "florence2_language", ["d_model"] = 16, ["num_hidden_layers"] = layers, ["encoder_layers"] = layers, ["decoder_layers"] = layers, ["vocab_size"] = V },
        ["vision_config"] = new JsonObject { ["model_type"] = "davit" },
    };

    /// <summary>A checkpoint of the given tensors (float32, N(0, 0.1) from <paramref name="seed"/>), its config.json and any extra files.</summary>
    static string Write(string folder, Dictionary<string, long[]> shapes, JsonObject config, ulong seed, params string[] extraFiles)
    {
        Directory.CreateDirectory(folder);
        using var scope = NewDisposeScope();
        using var gen = new Generator(seed);
        SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"),
            shapes.OrderBy(p => p.Key, StringComparer.Ordinal).ToDictionary(p => p.Key, p => randn(p.Value, generator: gen) * 0.1));
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        foreach (var f in extraFiles) File.WriteAllText(Path.Combine(folder, f), "{}");
        return folder;
    }

    static float[] Read(string folder, string name)
    {
        using var s = TensorStore.Open(folder);
        using var t = s.Load(name);
        return t.to(ScalarType.Float32).reshape(-1).data<float>().ToArray();
    }

    static JsonObject Config(string folder) => JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();

    static void SaysItCannotRun(MergeSummary summary, string folder, string architecture)
    {
        string note = $"architecture {architecture}: Amalgam merges it but cannot run it";
        Assert.Contains(summary.Notes, n => n.StartsWith(note, StringComparison.Ordinal));
        Assert.Contains(note, File.ReadAllText(Path.Combine(folder, "README.md")));
    }

    [Fact]
    public void Gpt2_small_example_keeps_the_first_8_of_12_layers_with_n_layer_8_in_float16()
    {
        using var dir = new TestData.TempDir();
        string gpt2 = Write(dir["gpt2"], Gpt2(12), Gpt2Config(12), 1, "vocab.json", "merges.txt");
        string yaml = "slices:\n  - sources:\n    - model: gpt2\n      layer_range: [0, 8]\nmerge_method: passthrough\ndtype: float16\n";
        var summary = MergeRunner.Run(MergePlan.Parse(yaml.Replace("gpt2", gpt2), "gpt2-small.yml"), dir["out"]);

        using (var output = TensorStore.Open(dir["out"]))
        {
            Assert.Equal(Gpt2(8).Keys.Order(StringComparer.Ordinal), output.Names.Order(StringComparer.Ordinal));
            Assert.All(output.Names, n => Assert.Equal(DType.F16, output.Info(n).DType));
        }
        foreach (var n in new[] { "wte.weight", "wpe.weight", "h.0.attn.c_attn.weight", "h.7.mlp.c_proj.bias", "ln_f.bias" })
        {
            using var scope = NewDisposeScope();
            var expected = tensor(Read(gpt2, n)).to(ScalarType.Float16).to(ScalarType.Float32).data<float>().ToArray();
            Assert.Equal(expected, Read(dir["out"], n));
        }
        var config = Config(dir["out"]);
        Assert.Equal(8, (int)config["n_layer"]!);
        Assert.Null(config["num_hidden_layers"]);
        Assert.Equal("float16", (string)config["torch_dtype"]!);
        Assert.True(File.Exists(Path.Combine(dir["out"], "vocab.json")) && File.Exists(Path.Combine(dir["out"], "merges.txt")));
        // GPT-2 is one of the decoder's families: the output loads, runs, and generates.
        Assert.DoesNotContain(summary.Notes, n => n.Contains("cannot run", StringComparison.Ordinal));
        using var model = Amalgam.Models.CheckpointLoader.Load(dir["out"]);
        Assert.Equal(8, model.Config.NumHiddenLayers);
        using var logits = model.Logits([1, 5, 7, 9]);
        Assert.Equal([4L, V], logits.shape);
        Assert.True(isfinite(logits).all().item<bool>());
        Assert.Equal(3, Amalgam.Models.GreedyDecoder.Generate(model, [[1L, 5, 7]], maxNewTokens: 3)[0].Count);
    }

    [Fact]
    public void Gpt2_slices_take_the_layers_of_each_source_by_h_index()
    {
        using var dir = new TestData.TempDir();
        string a = Write(dir["a"], Gpt2(4), Gpt2Config(4), 1), b = Write(dir["b"], Gpt2(4), Gpt2Config(4), 2);
        string yaml = $"slices:\n  - sources:\n    - model: {a}\n      layer_range: [0, 2]\n  - sources:\n    - model: {b}\n      layer_range: [1, 4]\nmerge_method: passthrough\n";
        MergeRunner.Run(MergePlan.Parse(yaml, "frankenmerge.yml"), dir["out"]);
        Assert.Equal(Read(a, "h.1.attn.c_attn.weight"), Read(dir["out"], "h.1.attn.c_attn.weight"));
        Assert.Equal(Read(b, "h.1.attn.c_attn.weight"), Read(dir["out"], "h.2.attn.c_attn.weight"));
        Assert.Equal(Read(b, "h.3.mlp.c_fc.bias"), Read(dir["out"], "h.4.mlp.c_fc.bias"));
        Assert.Equal(Read(a, "wte.weight"), Read(dir["out"], "wte.weight"));   // embeddings from the first slice
        Assert.Equal(Read(b, "ln_f.weight"), Read(dir["out"], "ln_f.weight")); // the final norm from the last
        Assert.Equal(5, (int)Config(dir["out"])["n_layer"]!);
    }

    [Fact]
    public void Vlm_linear_example_averages_every_tensor_of_two_qwen2_vls()
    {
        using var dir = new TestData.TempDir();
        string a = Write(dir["a"], Qwen2Vl(3, 4), Qwen2VlConfig(3, 4), 1, "preprocessor_config.json", "vocab.json");
        string b = Write(dir["b"], Qwen2Vl(3, 4), Qwen2VlConfig(3, 4), 2, "preprocessor_config.json", "vocab.json");
        string yaml = "models:\n  - model: Qwen/Qwen2-VL-7B-Instruct\n  # - model: microsoft/Florence-2-base\n    parameters:\n      weight: 1.0\n" +
            "  - model: impactframes/Qwen2-VL-7B-Captioner\n  # - model: maxiw/Florence-2-ScreenQA-base\n    parameters:\n      weight: 1.0\nmerge_method: linear\ndtype: float32";
        var summary = MergeRunner.Run(MergePlan.Parse(yaml.Replace("Qwen/Qwen2-VL-7B-Instruct", a).Replace("impactframes/Qwen2-VL-7B-Captioner", b), "vlm-linear.yml"), dir["out"]);
        using (var output = TensorStore.Open(dir["out"]))
            Assert.Equal(Qwen2Vl(3, 4).Keys.Order(StringComparer.Ordinal), output.Names.Order(StringComparer.Ordinal));
        foreach (var n in new[] { "visual.blocks.3.attn.qkv.weight", "visual.merger.mlp.0.bias", "model.layers.2.self_attn.k_proj.bias", "lm_head.weight" })
        {
            float[] x = Read(a, n), y = Read(b, n), merged = Read(dir["out"], n);
            for (int i = 0; i < x.Length; i++) Assert.True(Math.Abs((x[i] + y[i]) / 2 - merged[i]) < 1e-7, $"{n}[{i}]");
        }
        Assert.Equal(4, (int)Config(dir["out"])["vision_config"]!["depth"]!);
        Assert.True(File.Exists(Path.Combine(dir["out"], "preprocessor_config.json")));
        SaysItCannotRun(summary, dir["out"], "Qwen2VLForConditionalGeneration");
    }

    const string VlmTies = "models:\n  # - model: impactframes/Qwen2-VL-7B-Captioner\n  - model: maxiw/Florence-2-ScreenQA-base\n    parameters:\n      density: [1, 0.7, 0.1] # density gradient\n      weight: 1.0\n" +
        "  # - model: Qwen/Qwen2-VL-7B-Instruct\n  - model: microsoft/Florence-2-base\n    parameters:\n      density: 0.5\n      weight: [0, 0.3, 0.7, 1] # weight gradient\n" +
        "merge_method: ties\n# base_model: Qwen/Qwen2-VL-7B-Instruct\nbase_model: microsoft/Florence-2-base\nparameters:\n  normalize: true\n  int8_mask: true\ndtype: float16";

    [Fact]
    public void Vlm_ties_example_runs_on_florence_2_as_written()
    {
        using var dir = new TestData.TempDir();
        string tuned = Write(dir["screenqa"], Florence(2), FlorenceConfig(2), 1), baseModel = Write(dir["base"], Florence(2), FlorenceConfig(2), 2);
        var summary = MergeRunner.Run(MergePlan.Parse(VlmTies.Replace("maxiw/Florence-2-ScreenQA-base", tuned).Replace("microsoft/Florence-2-base", baseModel), "vlm-ties.yml"), dir["out"]);
        using (var output = TensorStore.Open(dir["out"]))
        {
            Assert.Equal(Florence(2).Keys.Order(StringComparer.Ordinal), output.Names.Order(StringComparer.Ordinal));
            Assert.All(output.Names, n => Assert.Equal(DType.F16, output.Info(n).DType));
        }
        // The base is listed as a model too: ties drops it there, so one task vector remains, at density 1 in layer 0
        // (t = 0) and weight 1: layer 0 of the encoder and of the decoder is the tuned model's (rounded to float16).
        foreach (var n in new[] { "language_model.model.encoder.layers.0.fc1.weight", "language_model.model.decoder.layers.0.encoder_attn.q_proj.bias" })
        {
            using var scope = NewDisposeScope();
            var expected = tensor(Read(tuned, n)).to(ScalarType.Float16).to(ScalarType.Float32).data<float>().ToArray();
            var got = Read(dir["out"], n);
            for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-3, $"{n}[{i}]: {expected[i]} vs {got[i]}");
        }
        // Layer 1 (t = 1): density 0.1 keeps int(0.1·n) entries of the task vector; the rest stay the base's.
        const string last = "language_model.model.decoder.layers.1.fc1.weight";
        float[] b = Read(baseModel, last), merged = Read(dir["out"], last);
        int changed = b.Zip(merged).Count(p => Math.Abs(p.First - p.Second) > 1e-2 * Math.Abs(p.First) + 1e-3);
        Assert.InRange(changed, 1, (int)(0.1 * b.Length));
        SaysItCannotRun(summary, dir["out"], "Florence2ForConditionalGeneration");
    }

    [Fact]
    public void Vlm_ties_example_runs_with_its_commented_qwen2_vl_lines()
    {
        using var dir = new TestData.TempDir();
        string yaml = string.Join("\n", VlmTies.Split('\n').Select(l => l.Contains("Florence") ? "#" + l : l.Replace("# - model:", "- model:").Replace("# base_model:", "base_model:")));
        string captioner = Write(dir["captioner"], Qwen2Vl(3, 4), Qwen2VlConfig(3, 4), 1), instruct = Write(dir["instruct"], Qwen2Vl(3, 4), Qwen2VlConfig(3, 4), 2);
        yaml = yaml.Replace("impactframes/Qwen2-VL-7B-Captioner", captioner).Replace("Qwen/Qwen2-VL-7B-Instruct", instruct);
        var plan = MergePlan.Parse(yaml, "vlm-ties.yml");
        Assert.Equal(instruct, plan.Final.BaseModel);
        MergeRunner.Run(plan, dir["out"]);
        using var output = TensorStore.Open(dir["out"]);
        Assert.Equal(Qwen2Vl(3, 4).Keys.Order(StringComparer.Ordinal), output.Names.Order(StringComparer.Ordinal));
    }

    /// <summary>Depth t within each stack: language layers over num_hidden_layers, vision blocks over vision_config.depth, and so on.</summary>
    [Theory]
    [InlineData("qwen2_vl", "model.layers.1.mlp.up_proj.weight", 0.5)]
    [InlineData("qwen2_vl", "visual.blocks.1.attn.qkv.weight", 1.0 / 3)]
    [InlineData("qwen2_vl", "visual.blocks.3.mlp.fc2.bias", 1.0)]
    [InlineData("qwen2_vl", "visual.merger.mlp.0.weight", 0.0)]
    [InlineData("whisper", "model.encoder.layers.1.fc1.weight", 1.0)]
    [InlineData("whisper", "model.decoder.layers.0.encoder_attn.k_proj.weight", 0.0)]
    [InlineData("whisper", "model.decoder.layers.2.fc1.weight", 2.0 / 3)]
    [InlineData("gpt2", "h.3.attn.c_attn.weight", 3.0 / 11)]
    [InlineData("gpt2", "wpe.weight", 0.0)]
    [InlineData("florence", "language_model.model.decoder.layers.1.fc1.weight", 1.0)]
    [InlineData("bert", "bert.encoder.layer.2.attention.self.query.weight", 0.5)]
    [InlineData("bert", "bert.embeddings.word_embeddings.weight", 0.0)]
    public void Depth_is_measured_within_each_layer_stack(string family, string tensor, double t)
    {
        using var dir = new TestData.TempDir();
        // Whisper with 2 encoder and 4 decoder layers: each stack has its own length.
        var (shapes, config) = family switch
        {
            "qwen2_vl" => (Qwen2Vl(3, 4), Qwen2VlConfig(3, 4)),
            "whisper" => (Whisper(4).Where(p => !p.Key.StartsWith("model.encoder.layers.", StringComparison.Ordinal) || ModelLayoutIndex(p.Key) < 2).ToDictionary(), WhisperWith(2, 4)),
            "gpt2" => (Gpt2(12), Gpt2Config(12)),
            "bert" => (Enumerable.Range(0, 5).Select(i => $"bert.encoder.layer.{i}.attention.self.query.weight").Append("bert.embeddings.word_embeddings.weight").ToDictionary(n => n, _ => new long[] { 4, 4 }),
                new JsonObject { ["architectures"] = new JsonArray("BertForMaskedLM"), ["model_type"] = "bert", ["num_hidden_layers"] = 5 }),
            _ => (Florence(2), FlorenceConfig(2)),
        };
        string folder = Write(dir["m"], shapes, config, 1);
        var layout = ModelLayout.Read(folder, shapes.Keys.ToList());
        Assert.Equal(t, layout.DepthOf(tensor), 12);
        Assert.Equal(family == "gpt2", layout.Runs);
    }

    static int ModelLayoutIndex(string name) => int.Parse(name.Split('.')[3]);

    static JsonObject WhisperWith(int encoder, int decoder)
    {
        var c = WhisperConfig(encoder);
        c["decoder_layers"] = decoder;
        return c;
    }

    [Fact]
    public void Whisper_encoder_decoder_weighted_examples_weight_each_part()
    {
        string[] recipes =
        [
            "# Test configuration for encoder-decoder weighted merging with Whisper models\nmerge_method: encoder_decoder_weighted\nmodels:\n  - model: openai/whisper-large-v2  # Base model\n    parameters:\n" +
            "      encoder_weight: 0.8  # Higher weight for encoder (audio processing)\n      decoder_weight: 0.3  # Lower weight for decoder\n  - model: user/whisper-french  # French-specialized model\n    parameters:\n" +
            "      encoder_weight: 0.2  # Lower weight for encoder\n      decoder_weight: 0.7  # Higher weight for decoder (text generation) ",
            "models:\n  - model: openai/whisper-large-v2  # Base model with good audio processing\n    parameters:\n      encoder_weight: 0.8  # Prioritize encoder (audio processing)\n      decoder_weight: 0.3\n" +
            "  - model: user/whisper-specialized  # Specialized model with better text generation\n    parameters:\n      encoder_weight: 0.2\n      decoder_weight: 0.7  # Prioritize decoder (text generation)\nmerge_method: encoder_decoder_weighted ",
        ];
        foreach (var recipe in recipes)
        {
            using var dir = new TestData.TempDir();
            string a = Write(dir["large"], Whisper(2), WhisperConfig(2), 1, "preprocessor_config.json", "normalizer.json");
            string b = Write(dir["tuned"], Whisper(2), WhisperConfig(2), 2, "preprocessor_config.json", "normalizer.json");
            string yaml = recipe.Replace("openai/whisper-large-v2", a).Replace("user/whisper-french", b).Replace("user/whisper-specialized", b);
            var summary = MergeRunner.Run(MergePlan.Parse(yaml, "whisper-encoder-decoder.yml"), dir["out"]);
            // encoder (and the encoder's convolutions): 0.8 / 0.2; decoder: 0.3 / 0.7; cross-attention: the means 0.55 / 0.45
            foreach (var (n, wa, wb) in new[] { ("model.encoder.conv1.weight", 0.8, 0.2), ("model.encoder.layers.1.self_attn.q_proj.weight", 0.8, 0.2),
                         ("model.decoder.layers.0.self_attn.v_proj.bias", 0.3, 0.7), ("model.decoder.embed_tokens.weight", 0.3, 0.7),
                         ("model.decoder.layers.1.encoder_attn.k_proj.weight", 0.55, 0.45), ("model.decoder.layers.0.encoder_attn_layer_norm.bias", 0.55, 0.45) })
            {
                float[] x = Read(a, n), y = Read(b, n), merged = Read(dir["out"], n);
                for (int i = 0; i < x.Length; i++) Assert.True(Math.Abs(wa * x[i] + wb * y[i] - merged[i]) < 1e-6, $"{n}[{i}]");
            }
            var config = Config(dir["out"]);
            Assert.Equal((2, 2), ((int)config["encoder_layers"]!, (int)config["decoder_layers"]!));
            Assert.True(File.Exists(Path.Combine(dir["out"], "preprocessor_config.json")) && File.Exists(Path.Combine(dir["out"], "normalizer.json")));
            SaysItCannotRun(summary, dir["out"], "WhisperForConditionalGeneration");
        }
    }

    [Fact]
    public void Encoder_decoder_weighted_needs_both_weights_of_every_model()
    {
        string yaml = "merge_method: encoder_decoder_weighted\nmodels:\n  - model: /a\n    parameters:\n      encoder_weight: 0.8\n  - model: /b\n    parameters:\n      encoder_weight: 0.2\n      decoder_weight: 0.7\n";
        var e = Assert.Throws<InvalidDataException>(() => MergePlan.Parse(yaml, "w.yml"));
        Assert.StartsWith("w.yml: models[0].parameters.decoder_weight: missing; required by encoder_decoder_weighted", e.Message);
    }

    /// <summary>
    /// The two Whisper slerp recipes give neither t nor base_model (which mergekit's slerp requires too); the LoRA one
    /// also writes <c>lora:</c> beside <c>model:</c>, which mergekit's InputModelDefinition has no field for (a LoRA is
    /// <c>model: BASE+LORA</c>). Refused in one line.
    /// </summary>
    [Theory]
    [InlineData("whisper-merge-multilingual.yml", "models:\n  - model: openai/whisper-large-v2  # Base multilingual model\n    parameters:\n      weight: 0.7\n  - model: user/whisper-specialized-french  # French-specialized model\n    parameters:\n      weight: 0.3\nmerge_method: slerp ",
        "whisper-merge-multilingual.yml: base_model: missing; required by slerp")]
    [InlineData("whisper-lora-multilingual.yml", "models:\n  - model: openai/whisper-large-v2  # Base model\n    lora: user/whisper-french-lora  # French LoRA adaptation\n    parameters:\n      weight: 0.6\n  - model: openai/whisper-large-v2  # Same base model\n    lora: user/whisper-german-lora  # German LoRA adaptation  \n    parameters:\n      weight: 0.4\nmerge_method: slerp ",
        "whisper-lora-multilingual.yml: models[0].lora: unknown field (expected model, parameters)")]
    public void Whisper_slerp_examples_are_refused_in_one_line(string example, string yaml, string expected)
    {
        var e = Assert.ThrowsAny<Exception>(() =>
        {
            using var dir = new TestData.TempDir();
            string a = Write(dir["large"], Whisper(2), WhisperConfig(2), 1), b = Write(dir["tuned"], Whisper(2), WhisperConfig(2), 2);
            MergeRunner.Run(MergePlan.Parse(yaml.Replace("openai/whisper-large-v2", a).Replace("user/whisper-specialized-french", b), example), dir["out"]);
        });
        Assert.IsType<InvalidDataException>(e);
        Assert.Equal(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    static (string A, string B) Unknown(TestData.TempDir dir)
    {
        var shapes = new Dictionary<string, long[]> { ["transformer.word_embeddings.weight"] = [V, 16], ["transformer.h.0.mlp.dense_h_to_4h.weight"] = [64, 16], ["transformer.h.1.mlp.dense_h_to_4h.weight"] = [64, 16] };
        JsonObject Cfg() => new() { ["architectures"] = new JsonArray("FalconForCausalLM"), ["model_type"] = "falcon", ["num_hidden_layers"] = 2 };
        return (Write(dir["a"], shapes, Cfg(), 1), Write(dir["b"], shapes, Cfg(), 2));
    }

    [Fact]
    public void An_unknown_architecture_merges_tensor_by_tensor_and_says_so()
    {
        using var dir = new TestData.TempDir();
        var (a, b) = Unknown(dir);
        var summary = MergeRunner.Run(MergePlan.Parse($"merge_method: linear\nmodels:\n  - model: {a}\n    parameters: {{weight: 1.0}}\n  - model: {b}\n    parameters: {{weight: 3.0}}\n", "u.yml"), dir["out"]);
        const string n = "transformer.h.1.mlp.dense_h_to_4h.weight";
        float[] x = Read(a, n), y = Read(b, n), merged = Read(dir["out"], n);
        for (int i = 0; i < x.Length; i++) Assert.True(Math.Abs((x[i] + 3 * y[i]) / 4 - merged[i]) < 1e-6);
        Assert.Contains(summary.Notes, s => s.StartsWith("architecture FalconForCausalLM: Amalgam merges it but cannot run it", StringComparison.Ordinal) && s.Contains("merged tensor by tensor"));
    }

    [Theory]
    [InlineData("merge_method: linear\nmodels:\n  - model: A\n    parameters: {weight: [1.0, 0.5]}\n  - model: B\n    parameters: {weight: 1.0}\n",
        "u.yml: models[0].parameters.weight: a gradient over depth needs the layer stacks, which Amalgam does not know for architecture FalconForCausalLM")]
    [InlineData("merge_method: linear\nmodels:\n  - model: A\n  - model: B\nparameters:\n  weight:\n    - filter: mlp\n      value: [1.0, 0.5]\n    - value: 1.0\n",
        "u.yml: parameters.weight: a gradient over depth needs the layer stacks, which Amalgam does not know for architecture FalconForCausalLM")]
    [InlineData("merge_method: passthrough\nslices:\n  - sources:\n    - model: A\n      layer_range: [0, 1]\n",
        "u.yml: slices: Amalgam does not know the layer stacks of architecture FalconForCausalLM")]
    public void An_unknown_architecture_refuses_gradients_and_slices_naming_the_field(string yaml, string expected)
    {
        using var dir = new TestData.TempDir();
        var (a, b) = Unknown(dir);
        var e = Assert.Throws<InvalidDataException>(() => MergeRunner.Run(MergePlan.Parse(yaml.Replace("model: A", "model: " + a).Replace("model: B", "model: " + b), "u.yml"), dir["out"]));
        Assert.StartsWith(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(Directory.Exists(dir["out"]));
    }

    [Fact]
    public void Slices_of_a_two_stack_architecture_are_refused_naming_its_stacks()
    {
        using var dir = new TestData.TempDir();
        string a = Write(dir["a"], Whisper(2), WhisperConfig(2), 1);
        var e = Assert.Throws<InvalidDataException>(() => MergeRunner.Run(MergePlan.Parse($"merge_method: passthrough\nslices:\n  - sources:\n    - model: {a}\n      layer_range: [0, 1]\n", "s.yml"), dir["out"]));
        Assert.Equal("s.yml: slices: architecture WhisperForConditionalGeneration has 2 layer stacks (encoder layers, decoder layers); slices index one stack, so Amalgam refuses them here", e.Message);
    }

    [Fact]
    public void An_in_memory_gpt2_merge_is_refused_in_one_line()
    {
        using var dir = new TestData.TempDir();
        string a = Write(dir["a"], Gpt2(2), Gpt2Config(2), 1), b = Write(dir["b"], Gpt2(2), Gpt2Config(2), 2);
        var e = Assert.ThrowsAny<Exception>(() => InMemoryMerge.ToModel(MergePlan.Parse($"merge_method: linear\nmodels:\n  - model: {a}\n  - model: {b}\n", "g.yml").Final));
        Assert.StartsWith("g.yml: an in-memory merge of GPT2LMHeadModel is not supported", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
