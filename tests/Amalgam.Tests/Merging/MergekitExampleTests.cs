using System.Text.Json;
using System.Text.Json.Nodes;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Moe;
using Amalgam.Merging.Recipes;
using Amalgam.Models;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

/// <summary>
/// mergekit's example recipes (examples/*.yml, as far as their text is known here), unchanged but for the model
/// names, which point at tiny 40-layer Llama checkpoints standing in for the 13B models they name; every output
/// loads and runs in Amalgam.
/// </summary>
public class MergekitExampleTests
{
    const int Layers = 40;

    /// <summary>A 40-layer tiny Llama: layer i is the golden model's layer i mod 2 plus noise.</summary>
    static string Deep(TestData.TempDir dir, string name, ulong seed)
    {
        string folder = dir[name];
        Directory.CreateDirectory(folder);
        using var store = TensorStore.Open(TestData.Golden(MergeFixtures.Base));
        using var scope = NewDisposeScope();
        using var gen = new Generator(seed);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Tensor Noisy(Tensor t) => t + randn(t.shape, generator: gen, dtype: t.dtype) * 0.05;
        foreach (var n in store.Names)
        {
            if (ParameterResolver.LayerOf(n) is not int layer) { tensors[n] = Noisy(store.Load(n)); continue; }
            if (layer != 0) continue;
            string suffix = n["model.layers.0.".Length..];
            for (int i = 0; i < Layers; i++) tensors[$"model.layers.{i}.{suffix}"] = Noisy(store.Load($"model.layers.{i % 2}.{suffix}"));
        }
        SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"), tensors);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.Golden(MergeFixtures.Base), "config.json")))!.AsObject();
        config["num_hidden_layers"] = Layers;
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        File.Copy(Path.Combine(TestData.Golden(MergeFixtures.Base), "tokenizer.amalgam.json"), Path.Combine(folder, "tokenizer.amalgam.json"));
        return folder;
    }

    static readonly string[] Names = ["psmathur/orca_mini_v3_13b", "garage-bAInd/Platypus2-13B", "WizardLM/WizardLM-13B-V1.2", "WizardLM/WizardMath-13B-V1.0", "TheBloke/Llama-2-13B-fp16",
        "model_a", "model_b", "model_c", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "gpt2",
        "./models_test/Mistral-7b-v0.1/", "./models_test/zephyr-7b-alpha/", "./models_test/zephyr-7b-beta/"];

    static string Local(string yaml, TestData.TempDir dir)
    {
        for (int i = 0; i < Names.Length; i++)
            if (yaml.Contains(Names[i])) yaml = yaml.Replace(Names[i], Directory.Exists(dir[$"m{i}"]) ? dir[$"m{i}"] : Deep(dir, $"m{i}", (ulong)(10 + i)));
        return yaml;
    }

    static void RunsInAmalgam(string folder, int layers)
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        Assert.Equal(layers, config.RootElement.GetProperty("num_hidden_layers").GetInt32());
        using var model = CheckpointLoader.Load(folder);
        using var logits = model.Logits([1, 5, 7, 9]);
        Assert.Equal([4L, 64L], logits.shape);
        Assert.True(isfinite(logits).all().item<bool>());
    }

    [Theory]
    [InlineData("linear.yml", """
        models:
          - model: psmathur/orca_mini_v3_13b
            parameters:
              weight: 1.0
          - model: WizardLM/WizardLM-13B-V1.2
            parameters:
              weight: 0.3
          - model: garage-bAInd/Platypus2-13B
            parameters:
              weight: 0.5
        merge_method: linear
        dtype: float16
        """, 40)]
    [InlineData("ties.yml", """
        models:
          - model: psmathur/orca_mini_v3_13b
            parameters:
              density: [1, 0.7, 0.1] # density gradient
              weight: 1.0
          - model: garage-bAInd/Platypus2-13B
            parameters:
              density: 0.5
              weight: [0, 0.3, 0.7, 1] # weight gradient
          - model: WizardLM/WizardMath-13B-V1.0
            parameters:
              density: 0.33
              weight:
                - filter: mlp
                  value: 0.5
                - value: 0
        merge_method: ties
        base_model: TheBloke/Llama-2-13B-fp16
        parameters:
          normalize: true
          int8_mask: true
        dtype: float16
        """, 40)]
    [InlineData("gradient-slerp.yml", """
        slices:
          - sources:
              - model: psmathur/orca_mini_v3_13b
                layer_range: [0, 40]
              - model: garage-bAInd/Platypus2-13B
                layer_range: [0, 40]
        merge_method: slerp
        base_model: psmathur/orca_mini_v3_13b
        parameters:
          t:
            - filter: self_attn
              value: [0, 0.5, 0.3, 0.7, 1]
            - filter: mlp
              value: [1, 0.5, 0.7, 0.3, 0]
            - value: 0.5 # fallback for rest of tensors
        dtype: float16
        """, 40)]
    [InlineData("orcamini-platy-44layer.yml", """
        slices:
          - sources:
              - model: psmathur/orca_mini_v3_13b
                layer_range: [0, 24]
          - sources:
              - model: garage-bAInd/Platypus2-13B
                layer_range: [20, 40]
        merge_method: passthrough
        dtype: float16
        """, 44)]
    [InlineData("bio-merge.yml", """
        models:
          - model: WizardLM/WizardLM-13B-V1.2
            parameters:
              density: 0.5
              weight: 0.5
          - model: garage-bAInd/Platypus2-13B
            parameters:
              density: 0.5
              weight: 0.5
        merge_method: ties
        base_model: TheBloke/Llama-2-13B-fp16
        parameters:
          normalize: false
          int8_mask: true
        dtype: bfloat16
        """, 40)]
    [InlineData("multi-stage", """
        name: stage-one
        merge_method: ties
        base_model: TheBloke/Llama-2-13B-fp16
        models:
          - model: psmathur/orca_mini_v3_13b
            parameters: {density: 0.5, weight: 0.5}
          - model: garage-bAInd/Platypus2-13B
            parameters: {density: 0.5, weight: 0.5}
        dtype: float16
        ---
        name: final
        merge_method: slerp
        base_model: stage-one
        models:
          - model: stage-one
          - model: WizardLM/WizardMath-13B-V1.0
        parameters:
          t: [0, 0.5, 1]
        dtype: float16
        """, 40)]
    [InlineData("mega.yml", """
        slices:
          - sources:
              - model: psmathur/orca_mini_v3_13b
                layer_range: [0, 40]
              - model: garage-bAInd/Platypus2-13B
                layer_range: [0, 40]
        merge_method: slerp
        base_model: psmathur/orca_mini_v3_13b
        parameters:
          t:
            - filter: self_attn
              value: [0, 0.5, 0.3, 0.7, 1]
            - filter: mlp
              value: [1, 0.5, 0.7, 0.3, 0]
            - value: 0.5 # fallback for rest of tensors
        dtype: float16
        out_path: ./models/gradient-slerp
        ---
        models:
          - model: ./models/gradient-slerp
            parameters:
              density: [1, 0.7, 0.1] # density gradient
              weight: 1.0
          - model: WizardLM/WizardMath-13B-V1.0
            parameters:
              density: 0.33
              weight:
                - filter: mlp
                  value: 0.5
                - value: 0
        merge_method: ties
        base_model: TheBloke/Llama-2-13B-fp16
        parameters:
          normalize: true
          int8_mask: true
        dtype: float16
        out_path: ./models/gradient-slerp-ties
        """, 40)]
    [InlineData("arcee_fusion.yml", """
        models:
          - model: model_a
          - model: model_b
        merge_method: arcee_fusion
        base_model: model_a
        dtype: bfloat16
        """, 40)]
    [InlineData("ramplus_tl (mergekit's test recipe)", """
        merge_method: ramplus_tl
        base_model: model_c
        models:
          - model: model_a
            parameters: {weight: 0.5}
          - model: model_b
            parameters: {weight: 0.5}
        parameters: {r: 0.1, alpha: 0.2}
        dtype: bfloat16
        """, 40)]
    [InlineData("lrp.yml", """
        merge_method: lrp
        base_model: TinyLlama/TinyLlama-1.1B-Chat-v1.0
        parameters:
          density: 0.7
        models:
          - model: psmathur/orca_mini_v3_13b
            parameters:
              weight: 1.0
          - model: garage-bAInd/Platypus2-13B
            parameters:
              weight: 1.0
        dtype: float16
        """, 40)]
    [InlineData("core_space.yml", """
        models:
          - model: gpt2
            parameters:
              weight: 0.5
          - model: gpt2
            parameters:
              weight: 1.0

        merge_method: core_space
        base_model: gpt2
        dtype: float32
        """, 40)]
    [InlineData("cabs.yml", """
        models:
          - model: ./models_test/Mistral-7b-v0.1/ # Identifier is the path string
          - model: ./models_test/zephyr-7b-alpha/ # Identifier is the path string
            parameters:
              weight: 0.6
              n_val: 8  # Per-model n
              m_val: 32 # Per-model m
          - model: ./models_test/zephyr-7b-beta/  # Identifier is the path string
            parameters:
              weight: 0.4
              n_val: 8  # Per-model n
              m_val: 32 # Per-model m
              # n_val and m_val not set for zephyr_beta, will use global defaults

        merge_method: cabs
        # Global method parameters, sibling to merge_method
        default_n_val: 8   # Global default n
        default_m_val: 32   # Global default m
        pruning_order:
          - ./models_test/zephyr-7b-alpha/
          - ./models_test/zephyr-7b-beta/

        base_model: ./models_test/Mistral-7b-v0.1/
        dtype: bfloat16
        """, 40)]
    public void A_mergekit_example_runs_and_its_output_runs_in_Amalgam(string example, string yaml, int layers)
    {
        using var dir = new TestData.TempDir();
        var plan = MergePlan.Parse(Local(yaml, dir), example);
        MergeRunner.Run(plan, dir["out"]);
        RunsInAmalgam(dir["out"], layers);
        Assert.Empty(Directory.GetDirectories(dir.Path, ".*"));
    }

    /// <summary>A noisy copy of a golden 2-layer checkpoint (with the test tokenizer), standing in for a 7B model.</summary>
    static string Noisy(TestData.TempDir dir, string golden, string name, ulong seed)
    {
        string folder = dir[name];
        if (Directory.Exists(folder)) return folder;
        Directory.CreateDirectory(folder);
        using var store = TensorStore.Open(TestData.Golden(golden));
        using var scope = NewDisposeScope();
        using var gen = new Generator(seed);
        SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"),
            store.Names.ToDictionary(n => n, n => store.Load(n) is var t ? t + randn(t.shape, generator: gen, dtype: t.dtype) * 0.05 : null!));
        File.Copy(Path.Combine(TestData.Golden(golden), "config.json"), Path.Combine(folder, "config.json"));
        File.Copy(Path.Combine(TestData.Golden(MergeFixtures.Base), "tokenizer.amalgam.json"), Path.Combine(folder, "tokenizer.amalgam.json"));
        return folder;
    }

    /// <summary>
    /// core_space.yml merges gpt2 with itself: mergekit gathers one tensor per distinct model, so every tensor is that
    /// model's (its one-input case); Amalgam gives the same, bit for bit in float32.
    /// </summary>
    [Fact]
    public void Core_space_example_gives_back_its_one_model()
    {
        using var dir = new TestData.TempDir();
        string yaml = "models:\n  - model: gpt2\n    parameters:\n      weight: 0.5\n  - model: gpt2\n    parameters:\n      weight: 1.0\n\nmerge_method: core_space\nbase_model: gpt2\ndtype: float32\n";
        MergeRunner.Run(MergePlan.Parse(Local(yaml, dir), "core_space.yml"), dir["out"]);
        using var input = TensorStore.Open(dir["m9"]);
        using var output = TensorStore.Open(dir["out"]);
        Assert.Equal(input.Names.Order(), output.Names.Order());
        foreach (var n in input.Names)
        {
            using var scope = NewDisposeScope();
            Assert.True(input.Load(n).eq(output.Load(n)).all().item<bool>(), n);
        }
    }

    /// <summary>
    /// cabs.yml end to end, in float32 (nothing rounded away) and with its top-level pruning_order reversed so that the
    /// order shows: zephyr-beta first takes the 8 largest |δ| of every 32 entries (weight 0.4), then zephyr-alpha the
    /// 8 largest of the 24 left (weight 0.6); checked on one tensor against plain loops.
    /// </summary>
    [Fact]
    public void Cabs_example_gives_each_model_in_pruning_order_8_of_every_32_entries()
    {
        using var dir = new TestData.TempDir();
        string yaml = "models:\n  - model: ./models_test/Mistral-7b-v0.1/\n  - model: ./models_test/zephyr-7b-alpha/\n    parameters: {weight: 0.6, n_val: 8, m_val: 32}\n" +
            "  - model: ./models_test/zephyr-7b-beta/\n    parameters: {weight: 0.4, n_val: 8, m_val: 32}\nmerge_method: cabs\ndefault_n_val: 8\ndefault_m_val: 32\n" +
            "pruning_order:\n  - ./models_test/zephyr-7b-beta/\n  - ./models_test/zephyr-7b-alpha/\nbase_model: ./models_test/Mistral-7b-v0.1/\ndtype: float32\n";
        MergeRunner.Run(MergePlan.Parse(Local(yaml, dir), "cabs.yml"), dir["out"]);
        const string name = "model.layers.3.self_attn.q_proj.weight";
        float[] Read(string folder) { using var s = TensorStore.Open(folder); using var t = s.Load(name); return t.reshape(-1).data<float>().ToArray(); }
        float[] b = Read(dir["m10"]), beta = Read(dir["m12"]), alpha = Read(dir["m11"]), merged = Read(dir["out"]);
        var expected = b.Select(x => (double)x).ToArray();
        var taken = new bool[b.Length];
        foreach (var (model, w) in new[] { (beta, 0.4), (alpha, 0.6) })  // the order this pruning_order gives
            for (int start = 0; start < b.Length; start += 32)
            {
                var block = Enumerable.Range(start, Math.Min(32, b.Length - start)).Where(i => !taken[i])
                    .OrderByDescending(i => Math.Abs((double)model[i] - b[i])).ThenBy(i => i).Take(8).ToList();
                foreach (int i in block) { expected[i] += w * ((double)model[i] - b[i]); taken[i] = true; }
            }
        Assert.Equal(b.Length / 2, taken.Count(t => t));  // 16 of every 32
        for (int i = 0; i < b.Length; i++) Assert.True(Math.Abs(expected[i] - merged[i]) < 1e-6, $"{name}[{i}]: expected {expected[i]}, got {merged[i]}");
    }

    /// <summary>The two example configurations of mergekit's docs/moe.md, unchanged but for the model names.</summary>
    [Theory]
    [InlineData("sparse upcycling of smol_llama into an 8x220M MoE", "llama_gqa", """
        base_model: BEE-spoke-data/smol_llama-220M-GQA
        gate_mode: random
        dtype: bfloat16
        experts:
          - source_model: BEE-spoke-data/smol_llama-220M-GQA
          - source_model: BEE-spoke-data/smol_llama-220M-GQA
          - source_model: BEE-spoke-data/smol_llama-220M-GQA
          - source_model: BEE-spoke-data/smol_llama-220M-GQA
          - source_model: BEE-spoke-data/smol_llama-220M-GQA
          - source_model: BEE-spoke-data/smol_llama-220M-GQA
          - source_model: BEE-spoke-data/smol_llama-220M-GQA
          - source_model: BEE-spoke-data/smol_llama-220M-GQA
        # and then train the sucker!
        """, 8)]
    [InlineData("shove some Mistral models in a clown car", "mistral", """
        base_model: NousResearch/Hermes-2-Pro-Mistral-7B
        gate_mode: hidden
        dtype: bfloat16
        experts:
          - source_model: NousResearch/Hermes-2-Pro-Mistral-7B
            positive_prompts:
              - "<|im_start|>user\nHello, who are you?<|im_end|>"
              - "<|im_start|>user\nI need help with"
          - source_model: BioMistral/BioMistral-7B-DARE
            positive_prompts:
              - "As a doctor of medicine,"
          - source_model: PocketDoc/Dans-AdventurousWinds-7b
            positive_prompts:
              - "[Genres: Science Fiction]\n[Tags: humor, old school, sci fi]"
              - "> get ye flask"
              - "[Mode: Interactive Storyteller]"
          - source_model: VAGOsolutions/SauerkrautLM-7b-HerO
            positive_prompts:
              - "<|im_start|>user\nWie geht es dir?<|im_end|>"
              - "Das ist ein Satz auf Deutsch."
        """, 4)]
    public void A_mergekit_moe_example_builds_a_mixtral_that_runs_in_Amalgam(string example, string golden, string yaml, int experts)
    {
        using var dir = new TestData.TempDir();
        string[] names = ["BEE-spoke-data/smol_llama-220M-GQA", "NousResearch/Hermes-2-Pro-Mistral-7B", "BioMistral/BioMistral-7B-DARE", "PocketDoc/Dans-AdventurousWinds-7b", "VAGOsolutions/SauerkrautLM-7b-HerO"];
        for (int i = 0; i < names.Length; i++)
            if (yaml.Contains(names[i])) yaml = yaml.Replace(names[i], Noisy(dir, golden, $"e{i}", (ulong)(30 + i)));
        Assert.True(MoeRecipe.IsMoeConfig(yaml));
        var summary = MoeMerge.Run(MoeRecipe.Parse(yaml, example), dir["out"]);
        Assert.Equal(2, summary.TensorsMerged);  // a router per layer
        var config = DecoderConfig.Load(dir["out"]);
        Assert.Equal(("MixtralForCausalLM", experts, 2, null), (config.Architecture, config.NumLocalExperts, config.NumExpertsPerToken, config.SlidingWindow));
        Assert.Equal("bfloat16", config.TorchDtype);
        using var model = CheckpointLoader.Load(dir["out"]);
        using var logits = model.Logits([1, 5, 7, 9]);
        Assert.Equal([4L, 64L], logits.shape);
        Assert.True(isfinite(logits).all().item<bool>());
    }

    /// <summary>Example recipes of mergekit's repository that Amalgam refuses, each naming what it lacks.</summary>
    [Theory]
    [InlineData("linear_small.yml", "models:\n  - model: BEE-spoke-data/smol_llama-220M-GQA\n\n  - model: BEE-spoke-data/smol_llama-220M-openhermes\n\nmetric_method: scale\ndtype: float32\n",
        "linear_small.yml: metric_method: mergekit's merge metrics are not implemented")]
    [InlineData("zipit.yml", "models:\n  - model: psmathur/orca_mini_v3_13b\n    parameters:\n      density: 0.5\nmerge_method: ties\nbase_model: TheBloke/Llama-2-13B-fp16\ndtype: float16\nalign_weights: \"zipit\"\n",
        "zipit.yml: align_weights: ZipIt alignment is not implemented")]
    [InlineData("chipalign.yml", "models:\n  - model: instruction_model_path\n  - model: chip_model_path\nmerge_method: nuslerp\nparameters:\n  geodesic: true\n  lambda: 0.5\n  nuslerp_flatten: true\ntokenizer:\n  source: \"union\"\ndtype: bfloat16\n",
        "chipalign.yml: parameters.geodesic: ChipAlign's geodesic interpolation (geodesic, lambda) is not implemented: it is no parameter of mergekit's nuslerp")]
    public void A_mergekit_example_amalgam_lacks_is_refused_naming_it(string example, string yaml, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => MergePlan.Parse(yaml, example));
        Assert.StartsWith(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
