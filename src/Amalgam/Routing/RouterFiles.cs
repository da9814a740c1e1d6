using System.Text.Json;
using System.Text.Json.Serialization;
using Amalgam.Models;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Routing;

/// <summary>router.json: what kind of router a folder holds, its experts, its feature size and its settings.</summary>
public sealed class RouterDescription
{
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";
    [JsonPropertyName("experts")] public List<string> Experts { get; set; } = [];
    [JsonPropertyName("feature_dim")] public long FeatureDim { get; set; }
    /// <summary>Learned router only: the options it was trained with (the architecture is read from them).</summary>
    [JsonPropertyName("options")] public LearnedRouterOptions? Options { get; set; }
    /// <summary>Centroid router only: the softmax temperature.</summary>
    [JsonPropertyName("temperature")] public double? Temperature { get; set; }
}

/// <summary>
/// A router folder: router.json (<see cref="RouterDescription"/>) and router.safetensors (float32 tensors), written
/// atomically; loading names the file and field at fault in a one-line error.
/// </summary>
public static class RouterFiles
{
    public const string DescriptionFile = "router.json";
    public const string TensorsFile = "router.safetensors";

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>Loads whichever router the folder holds (by router.json's kind).</summary>
    public static IExampleRouter Load(string dir)
    {
        var description = ReadDescription(dir);
        return description.Kind switch
        {
            LearnedRouter.Kind => LearnedRouter.Load(dir),
            CentroidRouter.Kind => CentroidRouter.Load(dir),
            _ => throw new InvalidDataException($"{Path.Combine(dir, DescriptionFile)}: kind '{description.Kind}' is not a router kind (expected '{LearnedRouter.Kind}' or '{CentroidRouter.Kind}')"),
        };
    }

    internal static void Write(string dir, RouterDescription description, IReadOnlyDictionary<string, Tensor> tensors) =>
        AtomicDirectory.Write(dir, staging =>
        {
            File.WriteAllText(Path.Combine(staging, DescriptionFile), JsonSerializer.Serialize(description, Json));
            SafeTensorsWriter.Save(Path.Combine(staging, TensorsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        });

    /// <summary>Reads and checks router.json (kind, experts, feature_dim).</summary>
    internal static RouterDescription ReadDescription(string dir, string? expectedKind = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: no such router folder");
        string file = Path.Combine(dir, DescriptionFile);
        var d = JsonConfigFile.Read<RouterDescription>(file, "a router folder holds router.json and router.safetensors");
        if (expectedKind is not null && d.Kind != expectedKind)
            throw new InvalidDataException($"{file}: kind is '{d.Kind}', expected '{expectedKind}'");
        if (d.Experts is null || d.Experts.Count == 0) throw new InvalidDataException($"{file}: experts: must list at least one expert");
        if (d.Experts.Distinct(StringComparer.Ordinal).Count() != d.Experts.Count) throw new InvalidDataException($"{file}: experts: names must be distinct");
        if (d.FeatureDim <= 0) throw new InvalidDataException($"{file}: feature_dim: must be positive, got {d.FeatureDim}");
        return d;
    }

    /// <summary>Loads router.safetensors, checking that each named tensor is float32 of the expected shape.</summary>
    internal static Dictionary<string, Tensor> ReadTensors(string dir, IReadOnlyDictionary<string, long[]> expected)
    {
        string file = Path.Combine(dir, TensorsFile);
        if (!File.Exists(file)) throw new FileNotFoundException($"{file}: missing (a router folder holds router.json and router.safetensors)", file);
        using var st = SafeTensorsFile.Open(file);
        var loaded = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, shape) in expected)
            {
                if (!st.Contains(name)) throw new InvalidDataException($"{file}: tensor '{name}' is missing");
                var info = st.Info(name);
                if (info.DType != DType.F32) throw new InvalidDataException($"{file}: tensor '{name}' is {info.DType}, expected F32");
                if (!info.Shape.SequenceEqual(shape))
                    throw new InvalidDataException($"{file}: tensor '{name}' has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", shape)}]");
                loaded[name] = st.Load(name).DetachFromDisposeScope();
            }
            var extra = st.Tensors.Select(t => t.Name).FirstOrDefault(n => !expected.ContainsKey(n));
            if (extra is not null) throw new InvalidDataException($"{file}: unexpected tensor '{extra}'");
            using var scope = NewDisposeScope();
            foreach (var (name, t) in loaded)
                if (!t.isfinite().all().item<bool>()) throw new InvalidDataException($"{file}: tensor '{name}' holds a non-finite value");
        }
        catch
        {
            foreach (var t in loaded.Values) t.Dispose();
            throw;
        }
        return loaded;
    }

    /// <summary>Checks router inputs shared by training and building: features [N, F] and labels in [0, K).</summary>
    internal static void CheckLabelled(Tensor features, IReadOnlyList<int> labels, IReadOnlyList<string> expertNames)
    {
        if (features.dim() != 2) throw new ArgumentException($"features must be [N, F], got [{string.Join(", ", features.shape)}]");
        if (features.shape[0] != labels.Count) throw new ArgumentException($"labels: {labels.Count} labels for {features.shape[0]} feature rows");
        if (labels.Count == 0) throw new ArgumentException("labels: no labelled examples");
        if (expertNames.Count == 0) throw new ArgumentException("experts: at least one expert name is needed");
        if (expertNames.Distinct(StringComparer.Ordinal).Count() != expertNames.Count) throw new ArgumentException("experts: names must be distinct");
        for (int i = 0; i < labels.Count; i++)
            if (labels[i] < 0 || labels[i] >= expertNames.Count)
                throw new ArgumentException($"labels[{i}] = {labels[i]}: expert index must be in [0, {expertNames.Count})");
        using var scope = NewDisposeScope();
        if (!features.isfinite().all().item<bool>()) throw new ArgumentException("features: hold a non-finite value");
    }

    /// <summary>Checks features given to a trained router: [N, F] with its F.</summary>
    internal static void CheckFeatures(Tensor features, long featureDim)
    {
        if (features.dim() != 2 || features.shape[1] != featureDim)
            throw new ArgumentException($"features must be [N, {featureDim}], got [{string.Join(", ", features.shape)}]");
    }
}
