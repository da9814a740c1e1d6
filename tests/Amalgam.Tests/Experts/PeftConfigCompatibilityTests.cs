using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Amalgam.Experts;
using Amalgam.Models;
using static Amalgam.Tests.Merging.MergeFixtures;

namespace Amalgam.Tests.Experts;

/// <summary>
/// adapter_config.json files Amalgam writes load in PEFT 0.10 and in the newest release: every field is one both
/// LoraConfig versions accept (tests/Golden/peft/lora_config_fields.py lists them), only fields that differ from
/// PEFT's defaults beyond the identity, and rank/alpha pattern keys that both versions' lookups resolve as Amalgam does.
/// </summary>
public class PeftConfigCompatibilityTests
{
    static readonly JsonObject Fields = JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.RepoRoot, "tests", "Golden", "peft", "lora_config_fields.json")))!.AsObject();
    static readonly string[] Identity = ["peft_type", "task_type", "base_model_name_or_path", "r", "lora_alpha", "target_modules"];

    static void AssertAcceptedByEveryVersion(string adapterDir, CausalLM model)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapterDir, LoraAdapter.ConfigFile)))!.AsObject();
        foreach (var (version, fields) in Fields["versions"]!.AsObject())
            foreach (var (key, value) in config)
            {
                Assert.True(fields!.AsObject().ContainsKey(key), $"PEFT {version} has no LoraConfig field '{key}'");
                if (!Identity.Contains(key))
                    Assert.False(JsonNode.DeepEquals(value, fields[key]), $"'{key}' is written with PEFT's default value {value?.ToJsonString()}");
            }
        // Each version's pattern lookup (first key that matches, else r / lora_alpha) gives the rank Amalgam loaded.
        using var adapter = LoraAdapter.Load(adapterDir, model);
        var rankPattern = config["rank_pattern"]?.AsObject().ToDictionary(kv => kv.Key, kv => (int)kv.Value!) ?? [];
        foreach (var (version, rule) in Fields["pattern_key_match"]!.AsObject())
            foreach (var (module, delta) in adapter.Deltas)
            {
                var key = rankPattern.Keys.FirstOrDefault(k => Regex.IsMatch(module, "^" + rule!.GetValue<string>().Replace("{key}", k)));
                int r = key is null ? (int)config["r"]! : rankPattern[key];
                Assert.True(r == delta.Rank, $"PEFT {version} would give '{module}' rank {r} (key {key ?? "none"}), the adapter has {delta.Rank}");
            }
    }

    [Fact]
    public void A_cat_merge_with_per_module_ranks_loads_in_every_PEFT_version()
    {
        using var dir = new TestData.TempDir();
        string[] experts = ["llama_gqa.lora_qv", "llama_gqa.lora_all", "llama_gqa.lora_rslora"];
        string yaml = $"merge_method: task_arithmetic\nbase_model: {TestData.Golden(Base)}\nmodels:\n" +
                      string.Concat(experts.Select(e => $"  - model: {TestData.Golden(e)}\n    parameters: {{weight: 1.0}}\n")) + "output: cat\n";
        Merge(yaml, dir["out"]);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["out"], LoraAdapter.ConfigFile)))!.AsObject();
        Assert.True(config["rank_pattern"]!.AsObject().Count > 0); // the case the old PEFTs got wrong
        Assert.Contains("layers.0.mlp.down_proj", config["rank_pattern"]!.AsObject().Select(kv => kv.Key));
        foreach (var absent in new[] { "exclude_modules", "lora_bias", "target_parameters", "trainable_token_indices", "layer_replication", "modules_to_save" })
            Assert.False(config.ContainsKey(absent), absent);
        using var model = CheckpointLoader.Load(TestData.Golden(Base));
        AssertAcceptedByEveryVersion(dir["out"], model);
    }

    [Theory]
    [InlineData("llama_gqa.lora_all")]
    [InlineData("llama_gqa.dora")]
    [InlineData("llama_gqa.saved")]
    public void A_saved_adapter_loads_in_every_PEFT_version(string golden)
    {
        using var dir = new TestData.TempDir();
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        using (var adapter = LoraAdapter.Load(TestData.Golden(golden), model)) adapter.Save(dir["copy"]);
        AssertAcceptedByEveryVersion(dir["copy"], model);
    }
}
