using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

/// <summary>Perturbed copies of the golden tiny checkpoint, recipes over them, and read-back helpers.</summary>
public static class MergeFixtures
{
    public const string Base = "llama_gqa";

    /// <summary>A copy of the golden base with Gaussian noise on every float tensor (and optionally a changed tensor).</summary>
    public static string Perturbed(TestData.TempDir dir, string name, ulong seed, Func<string, Tensor, Tensor>? edit = null)
    {
        string folder = dir[name];
        Directory.CreateDirectory(folder);
        using var store = TensorStore.Open(TestData.Golden(Base));
        using var scope = NewDisposeScope();
        using var gen = new Generator(seed);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var n in store.Names)
        {
            var t = store.Load(n);
            t = t + randn(t.shape, generator: gen, dtype: t.dtype) * 0.05;
            tensors[n] = edit?.Invoke(n, t) ?? t;
        }
        SafeTensorsWriter.Save(Path.Combine(folder, "model.safetensors"), tensors);
        File.Copy(Path.Combine(TestData.Golden(Base), "config.json"), Path.Combine(folder, "config.json"));
        return folder;
    }

    public static MergeRecipe Recipe(string yaml) => MergeRecipe.Parse(yaml, "recipe.yaml", TestMethods.Get);

    public static MergeSummary Merge(string yaml, string outDir, MergeRunOptions? options = null) => MergeRunner.Run(Recipe(yaml), outDir, options);

    /// <summary>Every tensor of a checkpoint folder, as float64 copies.</summary>
    public static Dictionary<string, Tensor> ReadAll(string folder)
    {
        using var store = TensorStore.Open(folder);
        return store.Names.ToDictionary(n => n, n => { using var t = store.Load(n); return t.to(ScalarType.Float64); });
    }

    public static Tensor Load(string folder, string name)
    {
        using var store = TensorStore.Open(folder);
        return store.Load(name);
    }

    public static void Dispose(Dictionary<string, Tensor> tensors) { foreach (var t in tensors.Values) t.Dispose(); }
}
