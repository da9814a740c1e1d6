using Amalgam.Models;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Experts;

/// <summary>
/// A PEFT LoRA adapter: its config and, per targeted module, the factored update ΔW = s·B·A. Owns its tensors.
/// Attaching adds s·B·(A·x) to a base layer's output without touching the base weights.
/// </summary>
public sealed class LoraAdapter : IDisposable
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";
    const string Prefix = "base_model.model.";

    private readonly Dictionary<string, LowRankDelta> deltas;

    public LoraAdapter(string name, LoraConfig config, IReadOnlyDictionary<string, (Tensor A, Tensor B)> factors)
    {
        Name = name;
        Config = config;
        deltas = factors.ToDictionary(f => f.Key, f => new LowRankDelta(f.Value.A, f.Value.B, LoraTargets.Scale(config, f.Key)), StringComparer.Ordinal);
    }

    public string Name { get; }
    public LoraConfig Config { get; }

    /// <summary>Module name (as in the base checkpoint, e.g. <c>model.layers.0.self_attn.q_proj</c>) → its update.</summary>
    public IReadOnlyDictionary<string, LowRankDelta> Deltas => deltas;

    /// <summary>
    /// Reads a PEFT adapter folder. With <paramref name="baseModel"/> it is also checked against that model
    /// (see <see cref="Validate"/>); float16 factors are widened to float32.
    /// </summary>
    /// <param name="dir">the adapter folder</param>
    /// <param name="baseModel">the model it must fit, if known</param>
    /// <param name="name">the expert's name (default: the folder's name)</param>
    public static LoraAdapter Load(string dir, CausalLM? baseModel = null, string? name = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: no such adapter folder");
        var config = LoraConfig.Load(Path.Combine(dir, ConfigFile));
        string weights = Path.Combine(dir, WeightsFile);
        if (!File.Exists(weights)) throw new FileNotFoundException($"{weights}: missing (adapter_model.bin pickles are not read; convert to safetensors)", weights);
        using var file = SafeTensorsFile.Open(weights);
        var factors = new Dictionary<string, (Tensor? A, Tensor? B)>(StringComparer.Ordinal);
        try
        {
            foreach (var info in file.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                var (module, part) = ParseKey(weights, info.Name);
                factors.TryGetValue(module, out var pair);
                var t = file.Load(info.Name);
                if (t.dtype == ScalarType.Float16) { var wide = t.to(ScalarType.Float32); t.Dispose(); t = wide; }
                factors[module] = part == "A" ? (t, pair.B) : (pair.A, t);
            }
            foreach (var (module, pair) in factors)
                if (pair.A is null || pair.B is null)
                    throw new InvalidDataException($"{weights}: module '{module}' has lora_{(pair.A is null ? "A" : "B")} missing");
        }
        catch
        {
            foreach (var (a, b) in factors.Values) { a?.Dispose(); b?.Dispose(); }
            throw;
        }
        var adapter = new LoraAdapter(name ?? Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')), config, factors.ToDictionary(f => f.Key, f => (f.Value.A!, f.Value.B!)));
        try
        {
            adapter.CheckRanks(weights);
            if (baseModel is not null) adapter.Validate(baseModel, weights);
        }
        catch
        {
            adapter.Dispose();
            throw;
        }
        return adapter;
    }

    /// <summary>Splits <c>base_model.model.&lt;module&gt;.lora_A.weight</c>; refuses every other kind of tensor by name.</summary>
    static (string Module, string Part) ParseKey(string file, string key)
    {
        if (key.Contains("lora_embedding_"))
            throw new NotSupportedException($"{file}: tensor '{key}': LoRA on embeddings is not supported yet");
        if (key.Contains("lora_magnitude_vector"))
            throw new NotSupportedException($"{file}: tensor '{key}': DoRA magnitude vectors are not supported yet");
        foreach (var part in new[] { "A", "B" })
        {
            string suffix = $".lora_{part}.weight";
            if (key.StartsWith(Prefix, StringComparison.Ordinal) && key.EndsWith(suffix, StringComparison.Ordinal) && key.Length > Prefix.Length + suffix.Length)
                return (key[Prefix.Length..^suffix.Length], part);
        }
        throw new InvalidDataException($"{file}: tensor '{key}' is not a LoRA factor (expected base_model.model.<module>.lora_A.weight or .lora_B.weight)");
    }

    /// <summary>Each module's factors are [r, in] and [out, r] with r as adapter_config.json (and rank_pattern) says.</summary>
    void CheckRanks(string file)
    {
        foreach (var (module, d) in deltas.OrderBy(d => d.Key, StringComparer.Ordinal))
        {
            int r = LoraTargets.Rank(Config, module);
            if (d.A.dim() != 2 || d.A.shape[0] != r)
                throw new InvalidDataException($"{file}: tensor '{Prefix}{module}.lora_A.weight' has shape [{string.Join(", ", d.A.shape)}] but r = {r} for this module");
            if (d.B.dim() != 2 || d.B.shape[1] != r)
                throw new InvalidDataException($"{file}: tensor '{Prefix}{module}.lora_B.weight' has shape [{string.Join(", ", d.B.shape)}] but r = {r} for this module");
        }
    }

    /// <summary>
    /// Refuses an adapter that does not fit <paramref name="model"/>, naming the first offending tensor: a module the
    /// model lacks, a module target_modules does not select, a shape that does not fit, or a targeted module without factors.
    /// </summary>
    public void Validate(CausalLM model, string? file = null)
    {
        file ??= Name;
        foreach (var (module, d) in deltas.OrderBy(d => d.Key, StringComparer.Ordinal))
        {
            string key = $"{Prefix}{module}.lora_A.weight";
            if (!model.Linears.TryGetValue(module, out var layer))
                throw new InvalidDataException($"{file}: tensor '{key}' targets module '{module}', which the base model ({model.Config.Architecture}) does not have");
            if (!LoraTargets.IsTargeted(Config, module, CausalLM.OutputLayer))
                throw new InvalidDataException($"{file}: tensor '{key}' is for module '{module}', which target_modules does not select");
            if (d.A.shape[1] != layer.InFeatures)
                throw new InvalidDataException($"{file}: tensor '{key}' has shape [{string.Join(", ", d.A.shape)}] but '{module}' takes {layer.InFeatures} inputs");
            if (d.B.shape[0] != layer.OutFeatures)
                throw new InvalidDataException($"{file}: tensor '{Prefix}{module}.lora_B.weight' has shape [{string.Join(", ", d.B.shape)}] but '{module}' has {layer.OutFeatures} outputs");
        }
        var untrained = model.Linears.Keys.Where(m => LoraTargets.IsTargeted(Config, m, CausalLM.OutputLayer) && !deltas.ContainsKey(m)).ToList();
        if (untrained.Count > 0)
            throw new InvalidDataException($"{file}: target_modules selects '{untrained[0]}'{(untrained.Count > 1 ? $" (and {untrained.Count - 1} more)" : "")} but the adapter has no lora_A/lora_B for it");
        if (deltas.Count == 0) throw new InvalidDataException($"{file}: adapter has no LoRA tensors");
    }

    /// <summary>Adds this adapter's updates to the model's layers; dispose the result to take them off again.</summary>
    public IDisposable AttachTo(CausalLM model)
    {
        Validate(model);
        foreach (var (module, d) in deltas) model.Linears[module].Attach(d);
        return new Detacher(() => { foreach (var (module, d) in deltas) model.Linears[module].Detach(d); });
    }

    /// <summary>W ← W + s·B·A in every targeted layer: an explicit, irreversible change of the base weights.</summary>
    public void FoldInto(CausalLM model)
    {
        Validate(model);
        foreach (var (module, d) in deltas) model.Linears[module].Fold(d);
    }

    /// <summary>Writes a PEFT adapter folder; the folder appears complete or not at all.</summary>
    public void Save(string dir)
    {
        var tensors = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (module, d) in deltas)
        {
            tensors[$"{Prefix}{module}.lora_A.weight"] = d.A;
            tensors[$"{Prefix}{module}.lora_B.weight"] = d.B;
        }
        AtomicDirectory.Write(dir, staging =>
        {
            File.WriteAllText(Path.Combine(staging, ConfigFile), Config.ToJson());
            SafeTensorsWriter.Save(Path.Combine(staging, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        });
    }

    public void Dispose()
    {
        foreach (var d in deltas.Values) { d.A.Dispose(); d.B.Dispose(); }
        deltas.Clear();
    }

    sealed class Detacher(Action detach) : IDisposable
    {
        private Action? action = detach;
        public void Dispose() { action?.Invoke(); action = null; }
    }
}
