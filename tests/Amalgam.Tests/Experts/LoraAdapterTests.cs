using System.Text.Json;
using System.Text.Json.Nodes;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Tests.Experts;

public class LoraAdapterTests
{
    static LoraConfig Config(string targets, string? rankPattern = null, string? alphaPattern = null, bool rslora = false) =>
        JsonSerializer.Deserialize<LoraConfig>($$"""
        {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_rslora": {{(rslora ? "true" : "false")}}, "target_modules": {{targets}},
         "rank_pattern": {{rankPattern ?? "{}"}}, "alpha_pattern": {{alphaPattern ?? "{}"}}}
        """)!;

    [Theory]
    [InlineData("[\"q_proj\", \"v_proj\"]", "model.layers.0.self_attn.q_proj", true)]
    [InlineData("[\"q_proj\", \"v_proj\"]", "model.layers.0.self_attn.k_proj", false)]
    [InlineData("[\"self_attn.q_proj\"]", "model.layers.3.self_attn.q_proj", true)]
    [InlineData("[\"proj\"]", "model.layers.0.self_attn.q_proj", false)] // suffix after a dot only
    [InlineData("\".*\\\\.(q_proj|up_proj)\"", "model.layers.1.mlp.up_proj", true)]
    [InlineData("\"q_proj\"", "model.layers.1.self_attn.q_proj", false)] // a string must match the whole name
    [InlineData("\"all-linear\"", "model.layers.1.mlp.down_proj", true)]
    [InlineData("\"all-linear\"", "lm_head", false)]
    public void Target_modules_follow_PEFT(string targets, string module, bool expected) =>
        Assert.Equal(expected, LoraTargets.IsTargeted(Config(targets), module, CausalLM.OutputLayer));

    [Fact]
    public void Rank_and_alpha_patterns_pick_the_first_matching_key_on_a_dotted_suffix()
    {
        var c = Config("\"all-linear\"", "{\"down_proj\": 2, \"layers\\\\.1\\\\..*\": 4}", "{\"layers\\\\.1\\\\.self_attn\\\\.o_proj\": 4}");
        Assert.Equal(2, LoraTargets.Rank(c, "model.layers.1.mlp.down_proj"));   // first key wins
        Assert.Equal(4, LoraTargets.Rank(c, "model.layers.1.mlp.up_proj"));
        Assert.Equal(8, LoraTargets.Rank(c, "model.layers.0.mlp.up_proj"));
        Assert.Equal(8, LoraTargets.Rank(c, "model.layers.0.mlp.xdown_proj")); // no match inside a name part
        Assert.Equal(16.0 / 2, LoraTargets.Scale(c, "model.layers.0.mlp.down_proj"));
        Assert.Equal(4.0 / 4, LoraTargets.Scale(c, "model.layers.1.self_attn.o_proj")); // both patterns apply
        Assert.Equal(16.0 / 8, LoraTargets.Scale(c, "model.layers.0.self_attn.o_proj"));
    }

    [Fact]
    public void RsLoRA_scales_by_alpha_over_root_r() =>
        Assert.Equal(16.0 / Math.Sqrt(8), LoraTargets.Scale(Config("\"all-linear\"", rslora: true), "model.layers.0.mlp.up_proj"));

    [Fact]
    public void The_golden_adapters_load_with_their_per_module_ranks_and_scales()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        using var all = LoraAdapter.Load(TestData.Golden("llama_gqa.lora_all"), model);
        Assert.Equal(14, all.Deltas.Count); // 7 linear layers × 2 blocks, lm_head excluded
        Assert.Equal(2, all.Deltas["model.layers.0.mlp.down_proj"].Rank);
        Assert.Equal(16.0 / 2, all.Deltas["model.layers.0.mlp.down_proj"].Scale); // rank_pattern r, default alpha
        Assert.Equal(0.5, all.Deltas["model.layers.1.self_attn.o_proj"].Scale);
        Assert.Equal(2.0, all.Deltas["model.layers.0.self_attn.o_proj"].Scale);
        using var rs = LoraAdapter.Load(TestData.Golden("llama_gqa.lora_rslora"), model);
        Assert.Equal(6, rs.Deltas.Count);
        Assert.Equal(8.0 / 2.0, rs.Deltas["model.layers.0.self_attn.q_proj"].Scale);
    }

    [Fact]
    public void Attaching_leaves_the_base_weights_untouched_and_detaching_restores_the_base()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        using var adapter = LoraAdapter.Load(TestData.Golden("llama_gqa.lora_qv"), model);
        long[] seq = [5, 9, 14, 3];
        using var baseLogits = model.Logits(seq);
        using var weight = model.Linears["model.layers.0.self_attn.q_proj"].Weight.clone();
        using (adapter.AttachTo(model))
        {
            using var adapted = model.Logits(seq);
            Assert.True((adapted - baseLogits).abs().max().item<float>() > 0.05f);
            Assert.True(model.Linears["model.layers.0.self_attn.q_proj"].Weight.equal(weight).all().item<bool>());
        }
        using var after = model.Logits(seq);
        Assert.True(after.equal(baseLogits).all().item<bool>());
    }

    [Fact]
    public void Folding_into_the_weights_equals_the_attached_adapter()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        using var adapter = LoraAdapter.Load(TestData.Golden("llama_gqa.lora_all"), model);
        long[] seq = [5, 9, 14, 3, 22];
        Tensor attached;
        using (adapter.AttachTo(model)) attached = model.Logits(seq);
        adapter.FoldInto(model);
        using var folded = model.Logits(seq);
        Assert.True((folded - attached).abs().max().item<float>() < 1e-4f);
        attached.Dispose();
    }

    [Fact]
    public void Save_then_load_round_trips_exactly_and_leaves_no_staging_folder()
    {
        using var tmp = new TestData.TempDir();
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        using var adapter = LoraAdapter.Load(TestData.Golden("llama_gqa.lora_all"), model);
        adapter.Save(tmp["copy"]);
        Assert.Equal(["copy"], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName));
        using var copy = LoraAdapter.Load(tmp["copy"], model);
        Assert.Equal(adapter.Deltas.Keys.Order(), copy.Deltas.Keys.Order());
        foreach (var (m, d) in adapter.Deltas)
        {
            Assert.True(copy.Deltas[m].A.equal(d.A).all().item<bool>());
            Assert.True(copy.Deltas[m].B.equal(d.B).all().item<bool>());
            Assert.Equal(d.Scale, copy.Deltas[m].Scale);
        }
    }

    static Exception Refusal(string adapterGolden, Action<JsonObject>? editConfig = null,
        Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>>? editTensors = null, string model = "llama_gqa")
    {
        using var tmp = new TestData.TempDir();
        string dir = TestData.CopyOf(adapterGolden, tmp);
        if (editConfig is not null)
        {
            string file = Path.Combine(dir, LoraAdapter.ConfigFile);
            var json = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
            editConfig(json);
            File.WriteAllText(file, json.ToJsonString());
        }
        if (editTensors is not null) TestData.RewriteSafetensors(Path.Combine(dir, LoraAdapter.WeightsFile), editTensors);
        using var baseModel = CheckpointLoader.Load(TestData.Golden(model));
        var e = Assert.ThrowsAny<Exception>(() => LoraAdapter.Load(dir, baseModel).Dispose());
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Theory]
    [InlineData("use_dora", "true")]
    [InlineData("fan_in_fan_out", "true")]
    [InlineData("modules_to_save", "[\"lm_head\"]")]
    [InlineData("bias", "\"all\"")]
    [InlineData("layers_to_transform", "[0]")]
    [InlineData("peft_type", "\"IA3\"")]
    [InlineData("r", "0")]
    public void Unsupported_config_fields_are_refused_by_name(string field, string value)
    {
        var e = Refusal("llama_gqa.lora_qv", c => c[field] = JsonNode.Parse(value));
        Assert.Contains(field, e.Message);
        Assert.Contains("adapter_config.json", e.Message);
    }

    const string QA = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
    const string QB = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";

    [Fact]
    public void Embedding_LoRA_is_refused_naming_the_tensor()
    {
        var e = Refusal("llama_gqa.lora_qv", editTensors: t => { t["base_model.model.model.embed_tokens.lora_embedding_A"] = zeros(4, 64); return t; });
        Assert.Contains("'base_model.model.model.embed_tokens.lora_embedding_A'", e.Message);
    }

    [Fact]
    public void A_module_the_base_lacks_is_refused_naming_the_tensor()
    {
        var e = Refusal("llama_gqa.lora_qv", editTensors: t =>
        {
            t["base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight"] = zeros(4, 32);
            t["base_model.model.model.layers.7.self_attn.q_proj.lora_B.weight"] = zeros(64, 4);
            return t;
        });
        Assert.Contains("'base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight'", e.Message);
        Assert.Contains("does not have", e.Message);
    }

    [Fact]
    public void A_wrong_shape_is_refused_naming_the_tensor()
    {
        var e = Refusal("llama_gqa.lora_qv", editTensors: t => { t[QA] = zeros(4, 31); return t; });
        Assert.Contains($"'{QA}'", e.Message);
        Assert.Contains("takes 32 inputs", e.Message);
    }

    [Fact]
    public void A_rank_that_disagrees_with_the_config_is_refused_naming_the_tensor()
    {
        var e = Refusal("llama_gqa.lora_qv", editTensors: t => { t[QA] = zeros(3, 32); t[QB] = zeros(32, 3); return t; });
        Assert.Contains($"'{QA}'", e.Message);
        Assert.Contains("r = 4", e.Message);
    }

    [Fact]
    public void A_missing_factor_or_an_untrained_target_is_refused()
    {
        Assert.Contains("lora_B missing", Refusal("llama_gqa.lora_qv", editTensors: t => { t.Remove(QB); return t; }).Message);
        var e = Refusal("llama_gqa.lora_qv", editTensors: t => { t.Remove(QA); t.Remove(QB); return t; });
        Assert.Contains("'model.layers.0.self_attn.q_proj'", e.Message);
        Assert.Contains("no lora_A/lora_B", e.Message);
    }

    [Fact]
    public void An_adapter_for_another_base_is_refused() =>
        Assert.Contains("takes", Refusal("qwen2_tied.lora_all", model: "mistral").Message);
}
