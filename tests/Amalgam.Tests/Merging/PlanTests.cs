using System.Text.Json;
using Amalgam.Experts;
using Amalgam.Merging;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Lora;
using Amalgam.Merging.Recipes;
using Amalgam.Models;
using Amalgam.Strategies;
using Amalgam.Tensors;
using Amalgam.Tests.Cli;
using static Amalgam.Tests.Merging.MergeFixtures;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

/// <summary>The typed plan (one reader, flags, overrides, ToYaml), in-memory merges, slices, multi-stage plans, model+lora.</summary>
public class PlanTests
{
    static string BaseDir => TestData.Golden(Base);

    [Fact]
    public void Rescale_true_and_false_are_accepted_in_a_recipe_as_l1_and_none()
    {
        string Yaml(string rescale) => $"merge_method: ties\nbase_model: {BaseDir}\nmodels: [{{model: a, parameters: {{weight: 1, density: 0.5}}}}]\nparameters: {{rescale: {rescale}}}\n";
        Assert.Equal("l1", MergeRecipe.Parse(Yaml("true")).Parameters["rescale"].Literals.Single());
        Assert.Equal("none", MergeRecipe.Parse(Yaml("false")).Parameters["rescale"].Literals.Single());
        Assert.Equal("l1", MergeRecipe.Parse(Yaml("l1")).Parameters["rescale"].Literals.Single());
        Assert.StartsWith("recipe: parameters.rescale: expected one of l1, inverse_density, none, true, false, got 'maybe'",
            Assert.Throws<InvalidDataException>(() => MergeRecipe.Parse(Yaml("maybe"))).Message);

        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 1), b = Perturbed(dir, "b", 2);
        string Run(string rescale)
        {
            string yaml = $"merge_method: ties\nbase_model: {BaseDir}\nmodels: [{{model: {a}, parameters: {{weight: 1, density: 0.5}}}}, {{model: {b}, parameters: {{weight: 0.5, density: 0.3}}}}]\nparameters: {{rescale: {rescale}}}\n";
            MergeRunner.Run(MergeRecipe.Parse(yaml), dir[rescale]);
            return dir[rescale];
        }
        const string key = "model.layers.0.mlp.up_proj.weight";
        using var t = Load(Run("true"), key);
        using var l1 = Load(Run("l1"), key);
        using var f = Load(Run("false"), key);
        Assert.True(t.equal(l1).all().item<bool>());
        Assert.True((t - f).abs().max().item<float>() > 1e-4);
    }

    [Fact]
    public void A_plan_written_with_ToYaml_parses_back_to_the_same_plan()
    {
        var plan = MergeRecipe.Parse($$"""
            merge_method: dare_ties
            base_model: {{BaseDir}}
            models:
              - model: ./x
                parameters:
                  weight: [0.2, 0.8]
                  density: [{filter: "self_attn", value: 0.5}, {value: 0.7}]
              - model: "./y z"
            parameters: {rescale: true, flavor: peft, lambda: 0.5}
            dtype: bfloat16
            random_seed: 7
            out_shard_size: 500M
            """);
        string yaml = plan.ToYaml();
        var again = MergeRecipe.Parse(yaml);
        Assert.Equal(yaml, again.ToYaml());
        Assert.Equal(7, again.RandomSeed);
        Assert.Equal(500_000_000, again.OutShardSize);
        Assert.Equal(ScalarType.BFloat16, again.Dtype);
        Assert.Equal(Path.GetFullPath("./y z"), again.Models[1].Path);
        Assert.Contains("rescale: l1", yaml);
        var overridden = MergeRecipe.Parse((plan with { RandomSeed = 11 }).ToYaml());
        Assert.Equal(11, overridden.RandomSeed);
    }

    [Fact]
    public void The_cli_seed_override_is_in_the_written_recipe()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 1);
        var r = CliRunner.Run("merge", "--method", "dare_linear", "--base", BaseDir, "--model", a, "--set", "density=0.5", "--random-seed", "5", dir["out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var written = MergeRecipe.Load(Path.Combine(dir["out"], "merge_recipe.yaml"));
        Assert.Equal(5, written.RandomSeed);
        Assert.Equal("dare_linear", written.Method.Name);
    }

    [Fact]
    public void The_in_memory_merge_equals_the_streamed_checkpoint()
    {
        string[] experts = [TestData.Golden("llama_gqa.lora_qv"), TestData.Golden("llama_gqa.lora_all")];
        var plan = ExpertMerge.Plan(BaseDir, experts, "ties", new Dictionary<string, object> { ["density"] = 0.5 }, [[0.7], [0.2, 0.9]]);
        using var dir = new TestData.TempDir();
        MergeRunner.Run(plan, dir["out"]);
        using var streamed = CheckpointLoader.Load(dir["out"]);
        using var inMemory = ExpertMerge.ToModel(BaseDir, experts, "ties", new Dictionary<string, object> { ["density"] = 0.5 }, [[0.7], [0.2, 0.9]]);
        var s = streamed.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in inMemory.named_parameters())
            Assert.True(p.equal(s[name]).all().item<bool>(), name);
        Assert.Contains("weight: [0.2, 0.9]", ExpertMerge.Recipe(BaseDir, experts, "ties", null, [[0.7], [0.2, 0.9]]));
    }

    [Fact]
    public void A_passthrough_frankenmerge_stacks_the_slices_layers_and_runs()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 1), b = Perturbed(dir, "b", 2);
        // orcamini-platy-44layer style: overlapping layer ranges of two models
        MergeRunner.Run(MergeRecipe.Parse($"""
            slices:
              - sources:
                  - model: {a}
                    layer_range: [0, 2]
              - sources:
                  - model: {b}
                    layer_range: [1, 2]
              - sources:
                  - model: {a}
                    layer_range: [1, 2]
            merge_method: passthrough
            dtype: float32
            """), dir["out"]);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["out"], "config.json")));
        Assert.Equal(4, config.RootElement.GetProperty("num_hidden_layers").GetInt32());
        var merged = ReadAll(dir["out"]);
        var ta = ReadAll(a); var tb = ReadAll(b);
        try
        {
            foreach (var (output, from, layer) in new[] { (0, ta, 0), (1, ta, 1), (2, tb, 1), (3, ta, 1) })
                foreach (var suffix in new[] { "self_attn.q_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight" })
                    Assert.True(merged[$"model.layers.{output}.{suffix}"].equal(from[$"model.layers.{layer}.{suffix}"]).all().item<bool>(), $"{output}.{suffix}");
            Assert.True(merged["model.embed_tokens.weight"].equal(ta["model.embed_tokens.weight"]).all().item<bool>()); // first slice
            Assert.True(merged["lm_head.weight"].equal(ta["lm_head.weight"]).all().item<bool>());                       // last slice
            Assert.Equal(ta.Count + 2 * ta.Keys.Count(k => k.StartsWith("model.layers.0.")), merged.Count);
        }
        finally { MergeFixtures.Dispose(merged); MergeFixtures.Dispose(ta); MergeFixtures.Dispose(tb); }
        using var model = CheckpointLoader.Load(dir["out"]);
        using var logits = model.Logits([1, 5, 7]);
        Assert.Equal(64, logits.shape[1]);
    }

    [Fact]
    public void Gradient_slerp_over_a_slice_indexes_t_over_the_slice()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 1);
        MergeRunner.Run(MergeRecipe.Parse($$"""
            slices:
              - sources:
                  - model: {{BaseDir}}
                    layer_range: [0, 2]
                  - model: {{a}}
                    layer_range: [0, 2]
            merge_method: slerp
            base_model: {{BaseDir}}
            parameters:
              t:
                - filter: self_attn
                  value: [0, 0.5, 0.3, 0.7, 1]
                - filter: mlp
                  value: [1, 0.5, 0.7, 0.3, 0]
                - value: 0.5
            dtype: float32
            """), dir["out"]);
        var slerp = MergeMethods.Get("slerp");
        foreach (var (name, t) in new[] { ("model.layers.0.self_attn.q_proj.weight", 0.0), ("model.layers.1.self_attn.q_proj.weight", 1.0),
                     ("model.layers.1.mlp.up_proj.weight", 0.0), ("model.layers.0.mlp.up_proj.weight", 1.0), ("model.norm.weight", 0.5) })
        {
            using var scope = NewDisposeScope();
            var expected = slerp.Merge(new MergeTensorInputs(name, Load(BaseDir, name), [Load(a, name)], [MergeParameters.Empty],
                new MergeParameters(new Dictionary<string, object> { ["t"] = t })));
            Assert.True(Load(dir["out"], name).allclose(expected, rtol: 0, atol: 1e-6), name);
        }
    }

    [Fact]
    public void A_multi_stage_recipe_runs_in_dependency_order_and_removes_its_intermediates()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 1), b = Perturbed(dir, "b", 2), c = Perturbed(dir, "c", 3);
        // the final stage comes first in the file: order follows the references, not the file
        string yaml = $$"""
            name: final
            merge_method: slerp
            base_model: {{BaseDir}}
            models: [{model: {{BaseDir}} }, {model: first}]
            parameters: {t: 0.4}
            ---
            name: first
            merge_method: linear
            models: [{model: {{a}}, parameters: {weight: 1} }, {model: second, parameters: {weight: 2} }]
            ---
            name: second
            merge_method: linear
            models: [{model: {{b}} }, {model: {{c}} }]
            """;
        var plan = MergePlan.Parse(yaml);
        Assert.Equal(["second", "first", "final"], plan.Stages.Select(s => s.Name).ToArray());
        MergeRunner.Run(plan, dir["out"]);
        Assert.Empty(Directory.GetDirectories(dir.Path, ".*"));
        var written = MergePlan.Load(Path.Combine(dir["out"], "merge_recipe.yaml"));
        Assert.Equal(plan.ToYaml(), written.ToYaml()); // the whole plan, by stage names
        // by hand: the same three merges, one after another
        MergeRunner.Run(MergeRecipe.Parse($"merge_method: linear\nmodels: [{b}, {c}]\n"), dir["s2"]);
        MergeRunner.Run(MergeRecipe.Parse($"merge_method: linear\nmodels: [{{model: {a}, parameters: {{weight: 1}}}}, {{model: {dir["s2"]}, parameters: {{weight: 2}}}}]\n"), dir["s1"]);
        MergeRunner.Run(MergeRecipe.Parse($"merge_method: slerp\nbase_model: {BaseDir}\nmodels: [{dir["s1"]}]\nparameters: {{t: 0.4}}\n"), dir["hand"]);
        var x = ReadAll(dir["out"]); var y = ReadAll(dir["hand"]);
        try { foreach (var (n, t) in x) Assert.True(t.equal(y[n]).all().item<bool>(), n); }
        finally { MergeFixtures.Dispose(x); MergeFixtures.Dispose(y); }

        Assert.Contains("cycle", Assert.Throws<InvalidDataException>(() => MergePlan.Parse("name: p\nmerge_method: linear\nmodels: [q]\n---\nname: q\nmerge_method: linear\nmodels: [p]\n---\nname: r\nmerge_method: linear\nmodels: [p]\n")).Message);
        Assert.Contains("missing; every document", Assert.Throws<InvalidDataException>(() => MergePlan.Parse("name: p\nmerge_method: linear\nmodels: [a]\n---\nmerge_method: linear\nmodels: [p]\n")).Message);
    }

    [Fact]
    public void Model_plus_lora_applies_the_adapter_before_merging()
    {
        using var dir = new TestData.TempDir();
        string lora = TestData.Golden("llama_gqa.lora_qv");
        MergeRunner.Run(MergeRecipe.Parse($"merge_method: passthrough\nmodels: [\"{BaseDir}+{lora}\"]\n"), dir["out"]);
        using var adapter = LoraAdapter.Load(lora);
        var (module, delta) = adapter.Deltas.First();
        using var scope = NewDisposeScope();
        var expected = Load(BaseDir, module + ".weight") + delta.Dense(ScalarType.Float32);
        Assert.True(Load(dir["out"], module + ".weight").allclose(expected, rtol: 0, atol: 1e-6));
        Assert.True(Load(dir["out"], "model.norm.weight").equal(Load(BaseDir, "model.norm.weight")).all().item<bool>());
    }

    [Fact]
    public void Tokenizer_source_and_chat_template_choose_the_tokenizer_files()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 1), b = Perturbed(dir, "b", 2);
        File.WriteAllText(Path.Combine(b, "tokenizer_config.json"), "{\"model_max_length\": 128}");
        File.WriteAllText(Path.Combine(b, "chat_template.jinja"), "{{ b }}");
        string yaml = $"merge_method: linear\nmodels: [{a}, {b}]\ntokenizer_source: model:{b}\n";
        MergeRunner.Run(MergeRecipe.Parse(yaml), dir["copied"]);
        Assert.Equal("{{ b }}", File.ReadAllText(Path.Combine(dir["copied"], "chat_template.jinja")));
        Assert.False(File.Exists(Path.Combine(dir["copied"], "tokenizer.amalgam.json"))); // b has none; a's is not copied
        MergeRunner.Run(MergeRecipe.Parse(yaml + "chat_template: chatml\n"), dir["chatml"]);
        Assert.Equal(ChatTemplates.Known["chatml"], File.ReadAllText(Path.Combine(dir["chatml"], "chat_template.jinja")));
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["chatml"], "tokenizer_config.json")));
        Assert.Equal(ChatTemplates.Known["chatml"], config.RootElement.GetProperty("chat_template").GetString());
        Assert.Equal(128, config.RootElement.GetProperty("model_max_length").GetInt32());
        MergeRunner.Run(MergeRecipe.Parse($"merge_method: linear\nmodels: [{a}, {b}]\nchat_template: \"{{{{ messages }}}}\"\n"), dir["literal"]);
        Assert.Equal("{{ messages }}", File.ReadAllText(Path.Combine(dir["literal"], "chat_template.jinja")));
        Assert.False(File.Exists(Path.Combine(dir["literal"], "tokenizer_config.json"))); // tokenizer_source defaults to the reference (a), which has none
        Assert.StartsWith("recipe: chat_template: expected auto, one of chatml, alpaca",
            Assert.Throws<InvalidDataException>(() => MergeRecipe.Parse($"merge_method: linear\nmodels: [{a}]\nchat_template: vicuna\n")).Message);
        Assert.StartsWith("recipe: tokenizer_source: 'nowhere' is not one of the merge's models",
            Assert.Throws<InvalidDataException>(() => MergeRunner.Run(MergeRecipe.Parse($"merge_method: linear\nmodels: [{a}]\ntokenizer_source: model:nowhere\n"), dir["x"])).Message);
        Assert.False(Directory.Exists(dir["x"]));
    }

    [Theory]
    [InlineData("merge_method: linear\nmodels: [a]\ngate_mode: hidden\n", "recipe: gate_mode: a mergekit-moe field in a merge recipe")]
    [InlineData("genome: {}\ntasks: []\n", "recipe: genome: mergekit-evolve configs are not supported")]
    [InlineData("merge_method: linear\nmodels: [a]\nmodules: {}\n", "recipe: modules: per-module definitions are not supported")]
    [InlineData("merge_method: linear\nmodels: [a]\ntokenizer_source: everything\n", "recipe: tokenizer_source: expected base, union or model:NAME")]
    [InlineData("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n        layer_range: [0, 2]\n      - model: b\n        layer_range: [0, 3]\n", "recipe: slices[0].sources[1].layer_range: 3 layers")]
    public void What_stays_out_is_refused_naming_the_feature(string yaml, string expected)
    {
        var message = Assert.Throws<InvalidDataException>(() => MergeRecipe.Parse(yaml)).Message;
        Assert.StartsWith(expected, message);
        Assert.DoesNotContain('\n', message);
    }
}
