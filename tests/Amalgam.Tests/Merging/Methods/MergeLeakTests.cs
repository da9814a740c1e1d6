using Amalgam.Merging;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging.Methods;

/// <summary>Each Merge leaves exactly one live tensor (its result) and nothing else.</summary>
[Collection(nameof(Amalgam.Tests.Tensors.TensorCountCollection))]
public class MergeLeakTests
{
    static long Live()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return torch.Tensor.TotalCount;
    }

    [Fact]
    public void Every_method_leaves_only_its_result()
    {
        using var scope = NewDisposeScope();
        var b = randn(6, 8, generator: new Generator(1));
        var models = Enumerable.Range(0, 3).Select(i => b + randn(6, 8, generator: new Generator((ulong)(2 + i)))).ToList();
        var pm = Enumerable.Range(0, 3).Select(_ => new MergeParameters(new Dictionary<string, object> { ["weight"] = 0.8, ["density"] = 0.5 })).ToList();
        var edw = Enumerable.Range(0, 3).Select(i => new MergeParameters(new Dictionary<string, object> { ["encoder_weight"] = 0.5 + i, ["decoder_weight"] = 1.0 })).ToList();
        var g = new Generator(9);
        foreach (var method in MergeMethods.All.Values)
        {
            var global = new MergeParameters(method.Name is "slerp" or "nearswap" ? new Dictionary<string, object> { ["t"] = 0.4 } : new());
            int count = method.Name switch { "slerp" or "nearswap" or "arcee_fusion" or "passthrough" => 1, "nuslerp" => 2, _ => 3 };
            var inputs = method.Name == "slerp"
                ? new MergeTensorInputs("model.layers.0.mlp.up_proj.weight", b, [models[0]], [MergeParameters.Empty], global, g)
                : new MergeTensorInputs("model.layers.0.mlp.up_proj.weight", method.BaseModel == BaseModelUse.Unused ? null : b,
                    models.Take(count).ToList(), (method.Name is "linear" or "model_stock" or "slerp" ? pm.Select(_ => MergeParameters.Empty).ToList() : method.Name == "encoder_decoder_weighted" ? edw : pm).Take(count).ToList(), global, g);
            long before = Live();
            var r = method.Merge(inputs);
            Assert.Equal(before + 1, Live());
            r.Dispose();
            Assert.Equal(before, Live());
        }
        // core_space's SVD paths (LoRA-named tensors) and cabs's n:m blocks with padding
        var core = MergeMethods.Get("core_space");
        foreach (var name in new[] { "model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.0.self_attn.q_proj.lora_B.weight", "model.layers.0.adapter.weight" })
        {
            long before = Live();
            core.Merge(new MergeTensorInputs(name, b, models, pm, MergeParameters.Empty)).Dispose();
            Assert.Equal(before, Live());
        }
        long start = Live();
        MergeMethods.Get("cabs").Merge(new MergeTensorInputs("model.layers.0.mlp.up_proj.weight", b, models,
            models.Select(_ => new MergeParameters(new Dictionary<string, object> { ["n_val"] = 2.0, ["m_val"] = 5.0 })).ToList(), MergeParameters.Empty)).Dispose();
        Assert.Equal(start, Live());
    }
}
