using System.Text.Json;
using TorchSharp;

namespace Amalgam.Tensors;

/// <summary>
/// A checkpoint's named tensors, whether in one safetensors file or sharded across several behind an index.
/// Every file is opened (and its header validated) once, up front, and stays mapped until <see cref="Dispose"/>.
/// </summary>
public sealed class TensorStore : IDisposable
{
    private readonly List<SafeTensorsFile> _files;
    private readonly Dictionary<string, SafeTensorsFile> _owner;

    private TensorStore(string path, List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> owner)
    {
        Path = path;
        _files = files;
        _owner = owner;
        Files = files.Select(f => f.Path).ToArray();
    }

    /// <summary>The file, index or folder this store was opened from.</summary>
    public string Path { get; }

    /// <summary>The safetensors files the tensors come from.</summary>
    public IReadOnlyList<string> Files { get; }

    public IReadOnlyCollection<string> Names => _owner.Keys;

    public bool Contains(string name) => _owner.ContainsKey(name);

    public TensorInfo Info(string name) => Owner(name).Info(name);

    /// <summary>The stored bytes' address in the mapping (see <see cref="SafeTensorsFile.Address"/>).</summary>
    public unsafe byte* Address(string name) => Owner(name).Address(name);

    /// <summary>A new CPU tensor of the stored dtype and shape.</summary>
    public torch.Tensor Load(string name) => Owner(name).Load(name);

    /// <summary>Copies a tensor into a contiguous CPU tensor of its stored dtype and shape (see <see cref="SafeTensorsFile.LoadInto"/>).</summary>
    public void LoadInto(string name, torch.Tensor destination) => Owner(name).LoadInto(name, destination);

    /// <summary>Rows [start, start + count) of the tensor's first dimension, in the stored dtype.</summary>
    public torch.Tensor LoadRows(string name, long start, long count) => Owner(name).LoadRows(name, start, count);

    /// <summary>
    /// Opens a <c>.safetensors</c> file, a <c>.safetensors.index.json</c> file, or a folder holding (first match wins)
    /// <c>model.safetensors</c>, <c>model.safetensors.index.json</c>, <c>adapter_model.safetensors</c> or
    /// <c>adapter_model.safetensors.index.json</c>.
    /// </summary>
    public static TensorStore Open(string path)
    {
        if (Directory.Exists(path))
        {
            string[] candidates =
            [
                CheckpointFileNames.Single(CheckpointFileNames.Model),
                CheckpointFileNames.Index(CheckpointFileNames.Model),
                CheckpointFileNames.Single(CheckpointFileNames.Adapter),
                CheckpointFileNames.Index(CheckpointFileNames.Adapter),
            ];
            var found = candidates.Select(c => System.IO.Path.Combine(path, c)).FirstOrDefault(File.Exists)
                ?? throw new FileNotFoundException($"{path}: no checkpoint found (looked for {string.Join(", ", candidates)})");
            return OpenFile(found, path);
        }
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such file or folder", path);
        return OpenFile(path, path);
    }

    private static TensorStore OpenFile(string file, string openedAs) =>
        file.EndsWith(".index.json", StringComparison.Ordinal) ? OpenIndex(file, openedAs) : OpenSingle(file, openedAs);

    private static TensorStore OpenSingle(string file, string openedAs)
    {
        var st = SafeTensorsFile.Open(file);
        return new TensorStore(openedAs, [st], st.Tensors.ToDictionary(t => t.Name, _ => st, StringComparer.Ordinal));
    }

    private static TensorStore OpenIndex(string indexPath, string openedAs)
    {
        var weightMap = ReadWeightMap(indexPath);
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var files = new List<SafeTensorsFile>();
        try
        {
            var byShard = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            // Shards in first-mention order of the sorted weight map: deterministic, and usually numeric order.
            foreach (var shard in weightMap.Values.Distinct().OrderBy(s => s, StringComparer.Ordinal))
            {
                var shardPath = System.IO.Path.Combine(folder, shard);
                if (!File.Exists(shardPath))
                    throw FormatError.Create(indexPath, $"shard {FormatError.Quote(shard)} named in the weight_map does not exist");
                var st = SafeTensorsFile.Open(shardPath);
                files.Add(st);
                byShard.Add(shard, st);
            }

            var owner = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var (name, shard) in weightMap)
            {
                var st = byShard[shard];
                if (!st.Contains(name))
                    throw FormatError.Create(indexPath, $"tensor {FormatError.Quote(name)} is mapped to shard {FormatError.Quote(shard)}, which does not hold it");
                owner.Add(name, st);
            }
            // A tensor a shard holds but the index assigns elsewhere (or nowhere) means the index and shards disagree.
            foreach (var (shard, st) in byShard)
            {
                foreach (var t in st.Tensors)
                {
                    if (!weightMap.TryGetValue(t.Name, out var mapped))
                        throw FormatError.Create(indexPath, $"shard {FormatError.Quote(shard)} holds tensor {FormatError.Quote(t.Name)}, which the weight_map does not list");
                    if (mapped != shard)
                        throw FormatError.Create(indexPath, $"tensor {FormatError.Quote(t.Name)} is in both shard {FormatError.Quote(shard)} and shard {FormatError.Quote(mapped)}");
                }
            }
            return new TensorStore(openedAs, files, owner);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Reads <c>weight_map</c> from an index, refusing anything malformed or pointing outside its folder.</summary>
    private static SortedDictionary<string, string> ReadWeightMap(string indexPath)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(indexPath), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw FormatError.Create(indexPath, $"index is not valid JSON ({e.Message})");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw FormatError.Create(indexPath, "index is not a JSON object");
            if (doc.RootElement.TryGetProperty("metadata", out var metadata) && metadata.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
                throw FormatError.Create(indexPath, "field 'metadata' is not an object");
            if (!doc.RootElement.TryGetProperty("weight_map", out var map))
                throw FormatError.Create(indexPath, "field 'weight_map' is missing");
            if (map.ValueKind != JsonValueKind.Object)
                throw FormatError.Create(indexPath, "field 'weight_map' is not an object");

            var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw FormatError.Create(indexPath, $"weight_map: tensor {FormatError.Quote(entry.Name)} maps to a non-string");
                var shard = entry.Value.GetString()!;
                // Shards live beside the index; a rooted or '..' name would read files outside the checkpoint.
                if (shard.Length == 0 || System.IO.Path.IsPathRooted(shard) || shard.Contains('/') || shard.Contains('\\'))
                    throw FormatError.Create(indexPath, $"weight_map: tensor {FormatError.Quote(entry.Name)} maps to {FormatError.Quote(shard)}, not a file name in the index's folder");
                if (!weightMap.TryAdd(entry.Name, shard))
                    throw FormatError.Create(indexPath, $"weight_map: tensor {FormatError.Quote(entry.Name)} is listed twice");
            }
            return weightMap;
        }
    }

    private SafeTensorsFile Owner(string name) =>
        _owner.TryGetValue(name, out var file)
            ? file
            : throw new KeyNotFoundException($"{System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(Path))}: no tensor {FormatError.Quote(name)}");

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
