using System.Text.Json;
using System.Text.Json.Nodes;
using Amalgam.Merging.Execution;
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

    static readonly string[] Names = ["psmathur/orca_mini_v3_13b", "garage-bAInd/Platypus2-13B", "WizardLM/WizardLM-13B-V1.2", "WizardLM/WizardMath-13B-V1.0", "TheBloke/Llama-2-13B-fp16"];

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
    public void A_mergekit_example_runs_and_its_output_runs_in_Amalgam(string example, string yaml, int layers)
    {
        using var dir = new TestData.TempDir();
        var plan = MergePlan.Parse(Local(yaml, dir), example);
        MergeRunner.Run(plan, dir["out"]);
        RunsInAmalgam(dir["out"], layers);
        Assert.Empty(Directory.GetDirectories(dir.Path, ".*"));
    }
}
