using System.Reflection;
using System.Text.Json;

namespace Amalgam.Tests;

/// <summary>Where the committed test data lives, and the golden cases written by tests/Golden/generate.py.</summary>
public static class TestData
{
    public static string RepoRoot { get; } = typeof(TestData).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RepoRoot").Value!;

    public static string Golden(string name) => Path.Combine(RepoRoot, "tests", "Golden", "data", name);

    public sealed record GoldenCase(string Name, string Model, string? Adapter, long[][] Sequences, float[][][] Logits, long[][] Greedy);

    static readonly Lazy<IReadOnlyList<GoldenCase>> cases = new(() =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Golden("goldens.json")));
        return doc.RootElement.EnumerateArray().Select(c => new GoldenCase(
            c.GetProperty("name").GetString()!,
            c.GetProperty("model").GetString()!,
            c.GetProperty("adapter").ValueKind == JsonValueKind.Null ? null : c.GetProperty("adapter").GetString(),
            c.GetProperty("sequences").Deserialize<long[][]>()!,
            c.GetProperty("logits").Deserialize<float[][][]>()!,
            c.GetProperty("greedy").Deserialize<long[][]>()!)).ToList();
    });

    public static IReadOnlyList<GoldenCase> Cases => cases.Value;
    public static GoldenCase Case(string name) => Cases.Single(c => c.Name == name);

    /// <summary>A scratch folder under the system temp directory, deleted on dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "amalgam-tests-" + Guid.NewGuid().ToString("N"));
        public TempDir() => Directory.CreateDirectory(Path);
        public string this[string name] => System.IO.Path.Combine(Path, name);
        public void Dispose() { if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true); }
    }

    /// <summary>Loads every tensor of a safetensors file, lets <paramref name="change"/> edit the set, and saves it back.</summary>
    public static void RewriteSafetensors(string file, Func<Dictionary<string, TorchSharp.torch.Tensor>, Dictionary<string, TorchSharp.torch.Tensor>> change)
    {
        var tensors = new Dictionary<string, TorchSharp.torch.Tensor>();
        using (var f = Amalgam.Tensors.SafeTensorsFile.Open(file))
            foreach (var t in f.Tensors) tensors[t.Name] = f.Load(t.Name);
        Amalgam.Tensors.SafeTensorsWriter.Save(file, change(tensors));
    }

    /// <summary>Copies a golden folder to a scratch place so a test can damage it.</summary>
    public static string CopyOf(string goldenFolder, TempDir into)
    {
        string dest = into[goldenFolder];
        Directory.CreateDirectory(dest);
        foreach (var f in Directory.GetFiles(Golden(goldenFolder))) File.Copy(f, System.IO.Path.Combine(dest, System.IO.Path.GetFileName(f)));
        return dest;
    }
}
