using System.Text.Json;
using System.Text.Json.Nodes;
using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Tests.Experts;

/// <summary>
/// DoRA and modules_to_save adapters against the independent float64 reference (tests/Golden/generate.py,
/// make_peft_cases → peft_goldens.json), attached and folded.
/// </summary>
public class PeftAdapterFormsTests
{
    const double Tolerance = 1e-4;

    sealed record Case(string Name, string Model, string Adapter, long[][] Sequences, float[][][] Logits);

    static readonly Lazy<List<Case>> cases = new(() =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.Golden("peft_goldens.json")));
        return doc.RootElement.EnumerateArray().Select(c => new Case(
            c.GetProperty("name").GetString()!, c.GetProperty("model").GetString()!, c.GetProperty("adapter").GetString()!,
            c.GetProperty("sequences").Deserialize<long[][]>()!, c.GetProperty("logits").Deserialize<float[][][]>()!)).ToList();
    });

    public static TheoryData<string> CaseNames() => new(cases.Value.Select(c => c.Name));

    static double MaxDiff(CausalLM model, Case c)
    {
        double worst = 0;
        for (int s = 0; s < c.Sequences.Length; s++)
        {
            using var scope = NewDisposeScope();
            var e = tensor(c.Logits[s].SelectMany(r => r).ToArray(), [c.Logits[s].Length, c.Logits[s][0].Length]);
            worst = Math.Max(worst, (model.Logits(c.Sequences[s]) - e).abs().max().item<float>());
        }
        return worst;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Attached_and_folded_match_the_reference(string name)
    {
        var c = cases.Value.Single(x => x.Name == name);
        using var model = CheckpointLoader.Load(TestData.Golden(c.Model));
        using var adapter = LoraAdapter.Load(TestData.Golden(c.Adapter), model);
        var baseWeights = model.named_parameters().Select(p => p.parameter.clone()).ToList();
        using (adapter.AttachTo(model))
        {
            double attached = MaxDiff(model, c);
            Assert.True(attached <= Tolerance, $"{name} attached: max |Δlogit| = {attached:G3}");
        }
        // Detaching puts every base tensor back (saved modules included).
        foreach (var ((_, p), b) in model.named_parameters().Zip(baseWeights))
            Assert.True(p.equal(b).all().item<bool>());
        foreach (var b in baseWeights) b.Dispose();
        adapter.FoldInto(model);
        double folded = MaxDiff(model, c);
        Assert.True(folded <= Tolerance, $"{name} folded: max |Δlogit| = {folded:G3}");
    }

    [Fact]
    public void DoRA_rescales_each_row_to_the_magnitude_and_leaves_the_bias()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("qwen2_tied"));
        using var adapter = LoraAdapter.Load(TestData.Golden("qwen2_tied.dora"), model);
        var layer = model.Linears["model.layers.0.self_attn.q_proj"];
        var bias = model.named_parameters().Single(p => p.name == "model.layers.0.self_attn.q_proj.bias").parameter.clone();
        var m = adapter.Deltas["model.layers.0.self_attn.q_proj"].Magnitude!;
        adapter.FoldInto(model);
        // Folded rows have exactly the trained magnitudes: W' = m ⊙ V / ‖V‖.
        Assert.True((linalg.vector_norm(layer.Weight, 2, [1L], false) - m).abs().max().item<float>() < 1e-5f);
        Assert.True(model.named_parameters().Single(p => p.name == "model.layers.0.self_attn.q_proj.bias").parameter.equal(bias).all().item<bool>());
    }

    [Fact]
    public void Save_round_trips_magnitudes_and_saved_modules_in_PEFTs_saved_form()
    {
        using var tmp = new TestData.TempDir();
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        foreach (var golden in new[] { "llama_gqa.dora", "llama_gqa.saved_embed" })
        {
            using var adapter = LoraAdapter.Load(TestData.Golden(golden), model);
            adapter.Save(tmp[golden]);
            using var file = Amalgam.Tensors.SafeTensorsFile.Open(Path.Combine(tmp[golden], LoraAdapter.WeightsFile));
            var names = file.Tensors.Select(t => t.Name).ToList();
            if (golden.EndsWith("dora"))
                Assert.Equal(14, names.Count(n => n.EndsWith(".lora_magnitude_vector")));
            else
                Assert.Contains("base_model.model.model.embed_tokens.weight", names); // the wrapper form is written as PEFT saves it
            using var copy = LoraAdapter.Load(tmp[golden], model);
            foreach (var (k, d) in adapter.Deltas)
                Assert.True(d.Magnitude is null ? copy.Deltas[k].Magnitude is null : d.Magnitude.equal(copy.Deltas[k].Magnitude!).all().item<bool>());
            foreach (var (k, t) in adapter.SavedTensors) Assert.True(t.equal(copy.SavedTensors[k]).all().item<bool>());
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp[golden], LoraAdapter.ConfigFile)))!.AsObject();
            Assert.Equal(golden.EndsWith("dora"), config.ContainsKey("use_dora"));
            Assert.Equal(!golden.EndsWith("dora"), config.ContainsKey("modules_to_save"));
        }
    }

    static Exception Refusal(string golden, Action<JsonObject>? editConfig = null,
        Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>>? editTensors = null, string model = "llama_gqa")
    {
        using var tmp = new TestData.TempDir();
        string dir = TestData.CopyOf(golden, tmp);
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

    const string QMagnitude = "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector";

    [Fact]
    public void A_missing_or_stray_magnitude_vector_is_refused_naming_the_tensor()
    {
        var missing = Refusal("llama_gqa.dora", editTensors: t => { t.Remove(QMagnitude); return t; });
        Assert.Contains(QMagnitude, missing.Message);
        Assert.Contains("use_dora", missing.Message);
        var stray = Refusal("llama_gqa.dora", c => c["use_dora"] = false);
        Assert.Contains("lora_magnitude_vector", stray.Message);
        var shape = Refusal("llama_gqa.dora", editTensors: t => { t[QMagnitude] = ones(5); return t; });
        Assert.Contains(QMagnitude, shape.Message);
    }

    [Fact]
    public void Saved_modules_are_refused_when_missing_misshapen_or_tied()
    {
        var missing = Refusal("llama_gqa.saved", editTensors: t => { t.Remove("base_model.model.lm_head.weight"); return t; });
        Assert.Contains("modules_to_save", missing.Message);
        Assert.Contains("lm_head", missing.Message);
        var shape = Refusal("llama_gqa.saved", editTensors: t => { t["base_model.model.model.norm.weight"] = ones(3); return t; });
        Assert.Contains("base_model.model.model.norm.weight", shape.Message);
        var tied = Refusal("qwen2_tied.lora_all", c => c["modules_to_save"] = new JsonArray("embed_tokens"),
            t => { t["base_model.model.model.embed_tokens.weight"] = zeros(64, 32); return t; }, model: "qwen2_tied");
        Assert.Contains("tied", tied.Message);
    }

    [Fact]
    public void An_expert_library_refuses_DoRA_and_saved_modules_naming_them()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        using var plain = LoraAdapter.Load(TestData.Golden("llama_gqa.lora_qv"), model);
        using var dora = LoraAdapter.Load(TestData.Golden("llama_gqa.dora"), model);
        using var saved = LoraAdapter.Load(TestData.Golden("llama_gqa.saved"), model);
        var e = Assert.Throws<NotSupportedException>(() => new ExpertLibrary(model, [plain, dora]));
        Assert.Contains("lora_magnitude_vector", e.Message);
        e = Assert.Throws<NotSupportedException>(() => new ExpertLibrary(model, [saved, plain]));
        Assert.Contains("modules_to_save", e.Message);
        Assert.Contains("lm_head", e.Message);
        Assert.All(model.Linears.Values, l => Assert.Null(l.Mixture));
    }
}

[Collection(nameof(Amalgam.Tests.Tensors.TensorCountCollection))]
public class DoraLeakTests
{
    [Fact]
    public void Attaching_and_detaching_a_DoRA_adapter_leaves_no_tensors_behind()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        using var adapter = LoraAdapter.Load(TestData.Golden("llama_gqa.dora"), model);
        using (model.Logits([5, 9])) { }
        long before = Tensor.TotalCount;
        using (adapter.AttachTo(model))
            using (model.Logits([5, 9, 14])) { }
        Assert.Equal(before, Tensor.TotalCount);
    }
}
