using System.Text.Json;
using System.Text.Json.Nodes;
using Amalgam.Predictors;
using Amalgam.Tensors;

namespace Amalgam.Strategies.Saved;

/// <summary>
/// A strategy folder: <c>strategy.json</c> (format and version, kind, name, the base and experts by path and
/// content hash, the kind's parameters, the fitting details) beside the kind's files (router weights, merged or
/// shared checkpoints, exclusive adapters). Written atomically; loaded without any suite, refusing in one line a
/// folder whose base or experts changed, whose format version is unknown, or whose files are damaged. Paths are
/// stored relative to the strategy folder, so a tree moved as a whole still loads.
/// </summary>
public static class StrategyFolder
{
    public const string FileName = "strategy.json";
    public const string Format = "amalgam-strategy";
    public const int FormatVersion = 1;

    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Saves <paramref name="strategy"/>, fitted on <paramref name="pool"/>, as the folder <paramref name="dir"/>.</summary>
    /// <param name="details">what fitting found, for the record (ignored on load)</param>
    public static void Save(DeployableStrategy strategy, ExpertPool pool, string dir, JsonObject? details = null)
    {
        string final = Path.GetFullPath(dir);
        string Relative(string path) => Path.GetRelativePath(final, Path.GetFullPath(path)).Replace('\\', '/');
        AtomicDirectory.Write(dir, staging =>
        {
            var parameters = strategy.Save(staging, pool);
            var root = new JsonObject
            {
                ["format"] = Format,
                ["format_version"] = FormatVersion,
                ["kind"] = strategy.Kind,
                ["name"] = strategy.Name,
                ["family"] = strategy.Family,
                ["variant"] = strategy.Variant,
                ["description"] = strategy.Description,
                ["base"] = new JsonObject { ["path"] = Relative(pool.BasePath), ["sha256"] = ContentHash.Of(pool.BasePath) },
                ["experts"] = new JsonArray(pool.Names.Select((name, k) => (JsonNode)new JsonObject
                {
                    ["name"] = name, ["path"] = Relative(pool.ExpertPaths[k]), ["sha256"] = ContentHash.Of(pool.ExpertPaths[k]),
                }).ToArray()),
                ["parameters"] = parameters,
                ["details"] = details?.DeepClone(),
            };
            File.WriteAllText(Path.Combine(staging, FileName), root.ToJsonString(Indented) + "\n");
        });
    }

    /// <summary>
    /// Copies a strategy folder to <paramref name="to"/> (atomically), rewriting its base and expert paths so that they
    /// still point at the same folders from the new place.
    /// </summary>
    public static void Copy(string from, string to)
    {
        string file = Path.Combine(from, FileName);
        var root = JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new InvalidDataException($"{file}: expected a JSON object");
        string final = Path.GetFullPath(to);
        void Rebase(JsonObject? o)
        {
            if (o?["path"] is JsonValue v && v.TryGetValue<string>(out var p))
                o["path"] = Path.GetRelativePath(final, Path.GetFullPath(Path.Combine(from, p))).Replace('\\', '/');
        }
        Rebase(root["base"] as JsonObject);
        foreach (var e in root["experts"] as JsonArray ?? []) Rebase(e as JsonObject);
        AtomicDirectory.Write(to, staging =>
        {
            foreach (var src in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            {
                string rel = Path.GetRelativePath(from, src);
                if (rel == FileName) continue;
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(staging, rel))!);
                File.Copy(src, Path.Combine(staging, rel));
            }
            File.WriteAllText(Path.Combine(staging, FileName), root.ToJsonString(Indented) + "\n");
        });
    }

    /// <summary>Reads a strategy folder: its base and (when the kind needs them) experts loaded and checked by hash.</summary>
    public static LoadedStrategy Load(string dir, TorchSharp.torch.Device? device = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: no such strategy folder");
        string file = Path.Combine(dir, FileName);
        if (!File.Exists(file)) throw new FileNotFoundException($"{file}: missing (a strategy folder holds strategy.json)", file);
        JsonObject root;
        try { root = JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new InvalidDataException($"{file}: expected a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{file}: not valid JSON ({e.Message})"); }

        string Field(string name) => root[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new InvalidDataException($"{file}: {name}: missing or not a string");
        if (Field("format") != Format) throw new InvalidDataException($"{file}: format: expected '{Format}', got '{Field("format")}'");
        int version = root["format_version"] is JsonValue fv && fv.TryGetValue<int>(out var n) ? n : throw new InvalidDataException($"{file}: format_version: missing or not an integer");
        if (version != FormatVersion) throw new InvalidDataException($"{file}: format_version: {version} is not supported (this Amalgam reads {FormatVersion})");
        string kind = Field("kind");
        if (!StrategyKinds.All.Contains(kind)) throw new InvalidDataException($"{file}: kind: '{kind}' is not one of {string.Join(", ", StrategyKinds.All)}");

        string Resolve(string path) => Path.GetFullPath(Path.Combine(dir, path));
        var baseNode = root["base"] as JsonObject ?? throw new InvalidDataException($"{file}: base: missing");
        string basePath = Resolve(PathOf(baseNode, file, "base"));
        var experts = root["experts"] as JsonArray ?? throw new InvalidDataException($"{file}: experts: missing");
        var named = experts.Select((e, i) => e is JsonObject o && o["name"] is JsonValue nv && nv.TryGetValue<string>(out var name)
            ? (Name: name, Path: Resolve(PathOf(o, file, $"experts[{i}]")), Hash: HashOf(o, file, $"experts[{i}]"))
            : throw new InvalidDataException($"{file}: experts[{i}]: needs name, path and sha256")).ToList();
        if (named.Select(e => e.Name).Distinct(StringComparer.Ordinal).Count() != named.Count) throw new InvalidDataException($"{file}: experts: names must be distinct");

        CheckHash(basePath, HashOf(baseNode, file, "base"), file, "base");
        bool usesExperts = kind is not (StrategyKinds.MergedModel or StrategyKinds.TwinMerging);
        if (usesExperts)
            for (int i = 0; i < named.Count; i++) CheckHash(named[i].Path, named[i].Hash, file, $"experts[{i}]");
        var p = new SavedParameters(root["parameters"] as JsonObject ?? throw new InvalidDataException($"{file}: parameters: missing"), file);
        // A folded merge runs on its own checkpoint alone: the base is checked by hash but not loaded.
        var pool = kind == StrategyKinds.MergedModel
            ? ExpertPool.ModelOnly(basePath, MergedModelStrategy.ModelPath(dir, p), device)
            : ExpertPool.Load(basePath, usesExperts ? named.Select(e => (e.Name, e.Path)).ToList() : [], device);
        try
        {
            DeployableStrategy strategy = kind switch
            {
                StrategyKinds.MergedModel => MergedModelStrategy.Load(dir, p, pool),
                StrategyKinds.Ensemble => EnsembleStrategy.Load(p, pool),
                StrategyKinds.Router => RouterStrategy.Load(dir, p, pool),
                StrategyKinds.Arrow => ArrowStrategy.Load(p),
                _ => TwinMergingStrategy.Load(dir, p, pool),
            };
            strategy.Name = Field("name");
            strategy.Family = Field("family");
            strategy.Variant = root["variant"]?.GetValue<string>();
            strategy.Description = root["description"]?.GetValue<string>() ?? "";
            return new LoadedStrategy(strategy, pool, named.Select(e => e.Name).ToList());
        }
        catch
        {
            pool.Dispose();
            throw;
        }
    }

    static string PathOf(JsonObject o, string file, string field) =>
        o["path"] is JsonValue v && v.TryGetValue<string>(out var s) && s.Length > 0 ? s : throw new InvalidDataException($"{file}: {field}.path: missing");

    static string HashOf(JsonObject o, string file, string field) =>
        o["sha256"] is JsonValue v && v.TryGetValue<string>(out var s) && s.Length == 64 ? s : throw new InvalidDataException($"{file}: {field}.sha256: missing or not 64 hex digits");

    static void CheckHash(string folder, string expected, string file, string field)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{file}: {field}.path: {folder} does not exist");
        string actual = ContentHash.Of(folder);
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{file}: {field}.sha256: {folder} changed since the strategy was saved (content hash {actual[..12]}…, saved {expected[..12]}…)");
    }
}

/// <summary>A strategy loaded from its folder with the pool it answers with; dispose to free both.</summary>
public sealed class LoadedStrategy(DeployableStrategy strategy, ExpertPool pool, IReadOnlyList<string> experts) : IDisposable
{
    public DeployableStrategy Strategy => strategy;
    public ExpertPool Pool => pool;
    /// <summary>The experts the strategy was fitted on (loaded only when it needs them).</summary>
    public IReadOnlyList<string> Experts => experts;

    /// <summary>The predictor (cached: routers and prototypes are built once).</summary>
    public IPredictor Predictor => predictor ??= strategy.Predictor(pool);
    private IPredictor? predictor;

    public void Dispose()
    {
        strategy.Dispose();
        pool.Dispose();
    }
}
