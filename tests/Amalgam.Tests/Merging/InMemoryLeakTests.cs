using Amalgam.Merging.Execution;
using Amalgam.Models;
using Amalgam.Strategies;
using TorchSharp;

namespace Amalgam.Tests.Merging;

/// <summary>
/// An in-memory merge frees every tensor it makes: ToAdapter returns the live count to where it started; ToModel
/// leaves exactly what loading a model of that shape from disk leaves (CheckpointLoader.Load: one tensor per
/// parameter stays counted after the model is disposed, a residue of model construction outside Merging).
/// </summary>
[Collection(nameof(Amalgam.Tests.Tensors.TensorCountCollection))]
public class InMemoryLeakTests
{
    static long Live()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return torch.Tensor.TotalCount;
    }

    [Fact]
    public void In_memory_merges_leave_no_tensors_of_their_own()
    {
        string baseDir = TestData.Golden(MergeFixtures.Base);
        string[] experts = [TestData.Golden("llama_gqa.lora_qv"), TestData.Golden("llama_gqa.lora_all")];
        var plan = ExpertMerge.Plan(baseDir, experts, "ties", new Dictionary<string, object> { ["density"] = 0.5 });
        using (InMemoryMerge.ToModel(plan)) { }
        using (CheckpointLoader.Load(baseDir)) { }

        long before = Live();
        using (CheckpointLoader.Load(baseDir)) { }
        long loadResidue = Live() - before;

        before = Live();
        using (InMemoryMerge.ToModel(plan)) { }
        Assert.Equal(loadResidue, Live() - before);

        before = Live();
        var (adapter, _) = InMemoryMerge.ToAdapter(plan with { Output = Amalgam.Merging.Recipes.MergeOutput.Adapter });
        adapter.Dispose();
        Assert.Equal(before, Live());
    }
}
