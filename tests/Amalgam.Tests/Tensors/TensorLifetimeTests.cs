using Amalgam.Tensors;
using TorchSharp;

namespace Amalgam.Tests.Tensors;

[CollectionDefinition(nameof(TensorCountCollection), DisableParallelization = true)]
public class TensorCountCollection;

/// <summary>
/// Counts live tensors with TorchSharp's process-wide <c>torch.Tensor.TotalCount</c>, so these tests run alone.
/// </summary>
[Collection(nameof(TensorCountCollection))]
public class TensorLifetimeTests
{
    [Fact]
    public void Loading_many_tensors_in_a_dispose_scope_leaves_none_alive()
    {
        using var dir = new TempFolder();
        var names = Enumerable.Range(0, 40).Select(i => $"t{i:D2}").ToArray();
        using (var scope = torch.NewDisposeScope())
        {
            SafeTensorsWriter.Save(dir.File("many.safetensors"),
                names.ToDictionary(n => n, n => torch.randn(3, 4).to(torch.ScalarType.BFloat16)));
        }

        using var store = TensorStore.Open(dir.File("many.safetensors"));
        long before = LiveTensors();
        var loaded = new List<torch.Tensor>();
        using (var scope = torch.NewDisposeScope())
        {
            foreach (var n in names) loaded.Add(store.Load(n));
            Assert.Equal(before + names.Length, torch.Tensor.TotalCount);   // exactly one tensor per load, no temporaries
        }
        Assert.All(loaded, t => Assert.True(t.IsInvalid));
        Assert.Equal(before, LiveTensors());
    }

    [Fact]
    public void Writing_leaves_no_temporaries_behind()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var source = torch.arange(12, dtype: torch.ScalarType.Float32).reshape(3, 4).t();   // non-contiguous: copied
        long before = LiveTensors();
        SafeTensorsWriter.Save(dir.File("w.safetensors"), new Dictionary<string, torch.Tensor> { ["x"] = source });
        Assert.Equal(before, LiveTensors());
    }

    private static long LiveTensors()
    {
        // Finalizers of tensors leaked elsewhere would otherwise lower the count mid-test.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return torch.Tensor.TotalCount;
    }
}
