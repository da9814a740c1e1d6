using System.Reflection;
using Amalgam.Tensors;
using TorchSharp;

namespace Amalgam.Tests.Tensors;

/// <summary>Reads the checkpoints that tests/Golden/generate.py wrote with the Python safetensors library.</summary>
public class GoldenCheckpointTests
{
    private static string? GoldenData()
    {
        var root = typeof(GoldenCheckpointTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "RepoRoot")?.Value;
        var data = root is null ? null : Path.Combine(root, "tests", "Golden", "data");
        return data is not null && Directory.Exists(data) ? data : null;
    }

    [Fact]
    public void Sharded_and_single_file_goldens_hold_identical_tensors()
    {
        var data = GoldenData();
        if (data is null || !Directory.Exists(Path.Combine(data, "llama_gqa_sharded"))) return; // goldens not generated here

        using var single = TensorStore.Open(Path.Combine(data, "llama_gqa"));
        using var sharded = TensorStore.Open(Path.Combine(data, "llama_gqa_sharded"));
        Assert.Single(single.Files);
        Assert.True(sharded.Files.Count > 1);
        Assert.Equal(single.Names.Order(StringComparer.Ordinal), sharded.Names.Order(StringComparer.Ordinal));
        foreach (var name in single.Names)
        {
            using var scope = torch.NewDisposeScope();
            var a = single.Load(name);
            var b = sharded.Load(name);
            Assert.Equal(a.dtype, b.dtype);
            Assert.Equal(a.shape, b.shape);
            Assert.True(a.bytes.SequenceEqual(b.bytes), name);
        }
    }

    [Fact]
    public void Every_golden_checkpoint_opens()
    {
        var data = GoldenData();
        if (data is null) return;
        int opened = 0;
        foreach (var folder in Directory.GetDirectories(data))
        {
            if (!Directory.EnumerateFiles(folder, "*.safetensors").Any()) continue;
            using var store = TensorStore.Open(folder);
            Assert.NotEmpty(store.Names);
            using var scope = torch.NewDisposeScope();
            foreach (var name in store.Names)
            {
                var t = store.Load(name);
                Assert.Equal(store.Info(name).Shape, t.shape);
            }
            opened++;
        }
        Assert.True(opened > 0);
    }
}
