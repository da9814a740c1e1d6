using Amalgam.Merging;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Methods;
using Amalgam.Merging.Recipes;
using Amalgam.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

/// <summary>
/// Row-block merging (IRowBlockMethod) gives the same bytes as merging each key whole, for every deterministic
/// task-vector method, on tie-heavy tensors large enough for the bracketed magnitude threshold, with block sizes
/// that split rows unevenly; random sparsifiers, the L1 rescale and trim_scope: model stay whole.
/// </summary>
[Collection(nameof(Amalgam.Tests.Tensors.TensorCountCollection))]
public class RowBlockMergeTests
{
    const int Experts = 3;

    /// <summary>A base and 3 experts: a 1100×1000 bf16 tensor (above the bracket's 2^20), an all-ties one (integer deltas), a small 2-D and a 1-D one.</summary>
    static (string Base, string[] Experts) Checkpoints(TestData.TempDir dir)
    {
        using var scope = NewDisposeScope();
        using var gen = new Generator(7);
        var baseTensors = new Dictionary<string, Tensor>
        {
            ["model.layers.0.mlp.w0.weight"] = (randn(1100, 1000, generator: gen) * 0.02).to(ScalarType.BFloat16),
            ["model.layers.0.mlp.w1.weight"] = zeros(1100, 1000, dtype: ScalarType.BFloat16),
            ["model.layers.0.mlp.w2.weight"] = randn(37, 13, generator: gen).to(ScalarType.BFloat16),
            ["model.norm.weight"] = randn(50, generator: gen).to(ScalarType.BFloat16),
        };
        string Write(string name, Dictionary<string, Tensor> tensors)
        {
            string folder = dir[name];
            Directory.CreateDirectory(folder);
            SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"), tensors);
            File.WriteAllText(Path.Combine(folder, "config.json"), """{"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 1, "torch_dtype": "bfloat16"}""");
            return folder;
        }
        var experts = Enumerable.Range(0, Experts).Select(e => Write($"expert{e}", baseTensors.ToDictionary(kv => kv.Key, kv =>
            kv.Key.EndsWith("w1.weight")
                ? randint(-3, 4, [1100, 1000], generator: gen).to(ScalarType.BFloat16) // deltas of 7 values: ties everywhere
                : (kv.Value.to(ScalarType.Float32) + randn(kv.Value.shape, generator: gen) * 0.002).to(ScalarType.BFloat16)))).ToArray();
        return (Write("base", baseTensors), experts);
    }

    static string Yaml(string method, string baseDir, string[] experts, string[] modelParams, string global, string outDtype) =>
        $"merge_method: {method}\nbase_model: {baseDir}\nmodels:\n" +
        string.Concat(experts.Select((m, i) => $"  - model: {m}\n    parameters: {{{modelParams[i]}}}\n")) +
        (global.Length > 0 ? $"parameters: {{{global}}}\n" : "") + $"dtype: float32\nout_dtype: {outDtype}\n";

    static void AssertSameBytes(string expected, string actual)
    {
        using var a = SafeTensorsFile.Open(Path.Combine(expected, "model.safetensors"));
        using var b = SafeTensorsFile.Open(Path.Combine(actual, "model.safetensors"));
        Assert.Equal(a.Tensors.Select(t => t.Name), b.Tensors.Select(t => t.Name));
        foreach (var t in a.Tensors)
        {
            Assert.Equal(t.DType, b.Info(t.Name).DType);
            Assert.True(a.Bytes(t.Name).SequenceEqual(b.Bytes(t.Name)), t.Name);
        }
    }

    public static TheoryData<string, string, string, string> Cases => new()
    {
        { "ties", "weight: 0.5, density: 0.5|weight: 1.0, density: 0.3|weight: 0.7, density: 1.0", "", "float32" },
        { "ties", "weight: 0.5, density: 0.5|weight: 1.0, density: 0.3|weight: 0.7, density: 0.9", "", "bfloat16" },
        { "ties", "weight: 0.5, density: 0.2|weight: -0.4, density: 0.6|weight: 0.7, density: 0.5", "flavor: peft, consensus: count, rescale: inverse_density", "float32" },
        { "task_arithmetic", "weight: 0.5|weight: 1.0|weight: -0.3", "lambda: 0.7", "float32" },
        { "task_arithmetic", "weight: 0.5|weight: 0.5|weight: 0.5", "", "bfloat16" },
        { "magnitude_prune", "weight: 0.5, density: 0.4|weight: 1.0, density: 0.4|weight: 0.2, density: 0.05", "normalize: true", "float32" },
        { "breadcrumbs", "weight: 0.5, density: 0.6, gamma: 0.05|weight: 1.0, density: 0.3, gamma: 0.0|weight: 0.2, density: 0.5, gamma: 0.2", "", "float32" },
        { "breadcrumbs_ties", "weight: 0.5, density: 0.6, gamma: 0.05|weight: 1.0, density: 0.3, gamma: 0.01|weight: 0.2, density: 0.5, gamma: 0.2", "", "float32" },
        { "dare_ties", "weight: 0.5, density: 0.5|weight: 1.0, density: 0.5|weight: 0.2, density: 0.5", "", "float32" },
        { "task_arithmetic", "weight: 0.3|weight: 0.9|weight: 0.4", "normalize: true, lambda: 1.3", "float16" },
        { "task_arithmetic", "weight: 0.3|weight: 0.9|weight: 0.4", "normalize: true, divisor: count", "bfloat16" },
        { "ties", "weight: 0.5, density: 0.5|weight: 1.0, density: 0.3|weight: 0.7, density: 0.7", "consensus_on: unweighted, divisor: count, lambda: 0.8", "bfloat16" },
        { "ties", "weight: 0.5, density: 0.0|weight: 1.0, density: 0.999|weight: 0.7, density: 0.5", "normalize: false", "float16" },
    };

    /// <summary>The configurations the fused kernels (FusedTaskVector) take: every key of these merges goes through them.</summary>
    static bool Fusable(string method, string global) =>
        method is "ties" or "task_arithmetic" or "magnitude_prune" && !global.Contains("l1") && !global.Contains("trim_scope: model");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Row_blocks_give_the_bytes_of_the_whole_tensor_merge(string method, string modelParams, string global, string outDtype)
    {
        using var dir = new TestData.TempDir();
        var (baseDir, experts) = Checkpoints(dir);
        var recipe = MergeRecipe.Parse(Yaml(method, baseDir, experts, modelParams.Split('|'), global, outDtype), "recipe.yaml");
        MergeRunner.Run(recipe, dir["whole"], new MergeRunOptions { BlockElements = 0, Fused = false });
        // 70 000 elements: 70 rows of 1000 (the last block 50), 5384 rows of 13, the 1-D tensor in blocks of 50 rows of 1
        MergeRunner.Run(recipe, dir["blocks"], new MergeRunOptions { BlockElements = 70_000, Fused = false });
        AssertSameBytes(dir["whole"], dir["blocks"]);
        MergeRunner.Run(recipe, dir["one-row"], new MergeRunOptions { BlockElements = 1, Fused = false }); // one row per block
        AssertSameBytes(dir["whole"], dir["one-row"]);
        // the fused kernels: chunks of 65 536 elements (17 over the 1100×1000 tensors, the all-ties one with ties
        // straddling the cut at density 0.3), the same bytes as the whole-tensor merge
        var fused = new List<string>();
        MergeRunner.Run(recipe, dir["fused"], new MergeRunOptions { OnFused = fused.Add });
        AssertSameBytes(dir["whole"], dir["fused"]);
        Assert.Equal(Fusable(method, global) ? 4 : 0, fused.Count);
    }

    static MergeTensorInputs Header(string method, string global, params double[] density)
    {
        var recipe = MergeRecipe.Parse($"merge_method: {method}\nbase_model: /b\nmodels:\n" +
            string.Concat(density.Select((d, i) => $"  - model: /m{i}\n    parameters: {{weight: 1{(method == "task_arithmetic" ? "" : $", density: {d}")}}}\n")) +
            (global.Length > 0 ? $"parameters: {{{global}}}\n" : ""), "recipe.yaml");
        var resolver = new ParameterResolver(recipe, 2);
        var models = density.Select((_, i) => resolver.ForModel(recipe.Models[i], "x")).ToList();
        return new MergeTensorInputs("x", zeros(0, 4), density.Select(_ => zeros(0, 4)).ToList(), models, resolver.Global("x"));
    }

    [Theory]
    [InlineData("ties", "", true)]
    [InlineData("task_arithmetic", "", true)]
    [InlineData("breadcrumbs", "", true)]
    [InlineData("magnitude_prune", "rescale: l1", false)]   // ‖δ‖₁ over the whole tensor
    [InlineData("ties", "trim_scope: model", false)]        // ranks across the model
    [InlineData("dare_ties", "", false)]                    // draws follow the whole tensor
    [InlineData("della", "", false)]
    public void Only_element_wise_configurations_merge_in_row_blocks(string method, string global, bool blocked)
    {
        using var scope = NewDisposeScope();
        var m = (TaskVectorMethod)MergeMethods.Get(method);
        var header = Header(method, global, 0.5, 0.5);
        var block = (long start, long count) => header with { Base = zeros(count, 4), Models = [zeros(count, 4), zeros(count, 4)] };
        using var merger = m.Prepare(header, 3, block);
        Assert.Equal(blocked, merger is not null);
    }

    [Fact]
    public void A_row_block_merge_leaves_no_tensors()
    {
        using var dir = new TestData.TempDir();
        var (baseDir, experts) = Checkpoints(dir);
        var recipe = MergeRecipe.Parse(Yaml("ties", baseDir, experts, ["weight: 0.5, density: 0.5", "weight: 1, density: 0.3", "weight: 1, density: 1"], "", "bfloat16"), "recipe.yaml");
        MergeRunner.Run(recipe, dir["first"], new MergeRunOptions { BlockElements = 70_000 });
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = torch.Tensor.TotalCount;
        MergeRunner.Run(recipe, dir["second"], new MergeRunOptions { BlockElements = 70_000 });
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(before, torch.Tensor.TotalCount);
    }
}
