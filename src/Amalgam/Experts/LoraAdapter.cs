using Amalgam.Models;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Experts;

/// <summary>
/// A PEFT LoRA adapter: its config and, per targeted module, the factored update ΔW = s·B·A (with DoRA, also the
/// magnitude vector m), plus the full copies of its <c>modules_to_save</c>. Owns its tensors.
/// Attaching adds s·B·(A·x) to a base layer's output without touching the base weights (DoRA: see
/// <see cref="LowRankDelta"/>); the saved modules' tensors are swapped in and swapped back on detach.
/// </summary>
public sealed class LoraAdapter : IDisposable
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";
    const string Prefix = "base_model.model.";

    private readonly Dictionary<string, LowRankDelta> deltas;
    private readonly Dictionary<string, Tensor> saved;

    /// <param name="magnitudes">DoRA magnitude vectors by module (owned by the adapter from now on), when use_dora.</param>
    /// <param name="savedModules">modules_to_save copies by parameter key (e.g. <c>lm_head.weight</c>), owned likewise.</param>
    public LoraAdapter(string name, LoraConfig config, IReadOnlyDictionary<string, (Tensor A, Tensor B)> factors,
        IReadOnlyDictionary<string, Tensor>? magnitudes = null, IReadOnlyDictionary<string, Tensor>? savedModules = null)
    {
        Name = name;
        Config = config;
        deltas = factors.ToDictionary(f => f.Key, f => new LowRankDelta(f.Value.A, f.Value.B, LoraTargets.Scale(config, f.Key))
        {
            Magnitude = magnitudes?.GetValueOrDefault(f.Key),
        }, StringComparer.Ordinal);
        saved = savedModules?.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal) ?? new(StringComparer.Ordinal);
    }

    public string Name { get; }
    public LoraConfig Config { get; }

    /// <summary>Module name (as in the base checkpoint, e.g. <c>model.layers.0.self_attn.q_proj</c>) → its update.</summary>
    public IReadOnlyDictionary<string, LowRankDelta> Deltas => deltas;

    /// <summary>Parameter key of the base (e.g. <c>lm_head.weight</c>) → the adapter's full copy (modules_to_save).</summary>
    public IReadOnlyDictionary<string, Tensor> SavedTensors => saved;

    public bool IsDora => deltas.Values.Any(d => d.IsDora);

    /// <summary>
    /// Refuses this adapter for a use that only understands ΔW = s·B·A on linear layers (mixing, factor-space merges),
    /// naming the first DoRA magnitude tensor or saved module and <paramref name="why"/>.
    /// </summary>
    public void RequirePlainLora(string why)
    {
        if (deltas.FirstOrDefault(d => d.Value.IsDora) is { Key: { } dora })
            throw new NotSupportedException($"{Name}: tensor '{Prefix}{dora}.lora_magnitude_vector': DoRA experts are not supported {why}");
        if (saved.Keys.Order(StringComparer.Ordinal).FirstOrDefault() is { } key)
            throw new NotSupportedException($"{Name}: modules_to_save: module '{key[..key.LastIndexOf('.')]}' is a full copy, not a low-rank update; not supported {why}");
    }

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
        var magnitudes = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var savedModules = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var info in file.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                var (module, part) = ParseKey(weights, info.Name, config);
                if (info.DType is not (DType.F32 or DType.F16 or DType.BF16))
                    throw new InvalidDataException($"{weights}: tensor '{Inputs.Names.Escape(info.Name)}': dtype {info.DType} is not a floating-point type; LoRA factors are F32, F16 or BF16");
                var t = file.Load(info.Name);
                if (t.dtype == ScalarType.Float16) { var wide = t.to(ScalarType.Float32); t.Dispose(); t = wide; }
                if (part == "M") { magnitudes[module] = t; continue; }
                if (part.StartsWith("save:", StringComparison.Ordinal))
                {
                    string key = $"{module}.{part[5..]}";
                    if (!savedModules.TryAdd(key, t)) { t.Dispose(); throw new InvalidDataException($"{weights}: tensor '{info.Name}': a second saved copy of '{key}'"); }
                    continue;
                }
                factors.TryGetValue(module, out var pair);
                factors[module] = part == "A" ? (t, pair.B) : (pair.A, t);
            }
            foreach (var (module, pair) in factors)
            {
                if (pair.A is null || pair.B is null)
                    throw new InvalidDataException($"{weights}: module '{module}' has lora_{(pair.A is null ? "A" : "B")} missing");
                if (pair.A.dtype != pair.B.dtype)
                    throw new InvalidDataException($"{weights}: module '{Inputs.Names.Escape(module)}': lora_A is {pair.A.dtype} but lora_B is {pair.B.dtype}; both factors must have one dtype");
            }
            CheckDora(weights, config, factors.Keys, magnitudes);
            foreach (var entry in config.SavedModules)
                if (!savedModules.Keys.Any(k => MatchesSaved(entry, k[..k.LastIndexOf('.')])))
                    throw new InvalidDataException($"{config.Source}: modules_to_save: '{entry}' has no saved copy in {weights} (expected {Prefix}<module>.weight)");
        }
        catch
        {
            foreach (var (a, b) in factors.Values) { a?.Dispose(); b?.Dispose(); }
            foreach (var t in magnitudes.Values.Concat(savedModules.Values)) t.Dispose();
            throw;
        }
        var adapter = new LoraAdapter(name ?? Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')), config, factors.ToDictionary(f => f.Key, f => (f.Value.A!, f.Value.B!)), magnitudes, savedModules);
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

    /// <summary>
    /// Splits a PEFT key into (module, part): <c>base_model.model.&lt;module&gt;.lora_A.weight</c> / <c>.lora_B.weight</c>
    /// ("A", "B"), DoRA's <c>.lora_magnitude_vector</c> (PEFT's saved form; <c>.weight</c> after it as newer PEFT holds
    /// it in memory) ("M"), and a modules_to_save copy, <c>&lt;module&gt;.weight</c> as PEFT saves it or
    /// <c>&lt;module&gt;.modules_to_save.&lt;adapter&gt;.weight</c> as its state dict holds it ("save:weight").
    /// Every other kind of tensor is refused by name.
    /// </summary>
    static (string Module, string Part) ParseKey(string file, string key, LoraConfig config)
    {
        if (key.Contains("lora_embedding_"))
            throw new NotSupportedException($"{file}: tensor '{key}': LoRA on embeddings is not supported yet");
        if (key.StartsWith(Prefix, StringComparison.Ordinal))
        {
            string rest = key[Prefix.Length..];
            foreach (var (suffix, part) in new[] { (".lora_A.weight", "A"), (".lora_B.weight", "B"), (".lora_magnitude_vector", "M"), (".lora_magnitude_vector.weight", "M") })
                if (rest.EndsWith(suffix, StringComparison.Ordinal) && rest.Length > suffix.Length)
                {
                    if (part == "M" && !config.UseDora)
                        throw new InvalidDataException($"{file}: tensor '{key}' is a DoRA magnitude vector but {config.Source} does not set use_dora: true");
                    return (rest[..^suffix.Length], part);
                }
            int dot = rest.LastIndexOf('.');
            if (dot > 0)
            {
                string module = rest[..dot], parameter = rest[(dot + 1)..];
                int wrapper = module.IndexOf(".modules_to_save.", StringComparison.Ordinal);
                if (wrapper > 0 && module.IndexOf('.', wrapper + ".modules_to_save.".Length) < 0) module = module[..wrapper];
                if (config.SavedModules.Any(entry => MatchesSaved(entry, module)))
                    return (module, "save:" + parameter);
            }
        }
        throw new InvalidDataException($"{file}: tensor '{key}' is not a LoRA factor (expected base_model.model.<module>.lora_A.weight or .lora_B.weight{(config.UseDora ? ", .lora_magnitude_vector" : "")}{(config.SavedModules.Count > 0 ? ", or <module>.weight of a module in modules_to_save" : "")})");
    }

    /// <summary>PEFT's modules_to_save rule: the entry is the module's name or a dotted suffix of it.</summary>
    static bool MatchesSaved(string entry, string module) =>
        module == entry || module.EndsWith("." + entry, StringComparison.Ordinal);

    /// <summary>With use_dora every module has a magnitude vector of one entry per output; without it none does.</summary>
    static void CheckDora(string file, LoraConfig config, IEnumerable<string> modules, Dictionary<string, Tensor> magnitudes)
    {
        if (!config.UseDora) return;
        foreach (var module in modules.Order(StringComparer.Ordinal))
            if (!magnitudes.ContainsKey(module))
                throw new InvalidDataException($"{file}: tensor '{Prefix}{module}.lora_magnitude_vector' is missing, but use_dora is true in {config.Source}");
        foreach (var (module, m) in magnitudes.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!modules.Contains(module))
                throw new InvalidDataException($"{file}: tensor '{Prefix}{module}.lora_magnitude_vector' has no lora_A/lora_B beside it");
            if (m.dim() != 1)
                throw new InvalidDataException($"{file}: tensor '{Prefix}{module}.lora_magnitude_vector' has shape [{string.Join(", ", m.shape)}]; expected one value per output");
        }
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
            if (d.Magnitude is { } m && m.shape[0] != layer.OutFeatures)
                throw new InvalidDataException($"{file}: tensor '{Prefix}{module}.lora_magnitude_vector' has shape [{string.Join(", ", m.shape)}] but '{module}' has {layer.OutFeatures} outputs");
        }
        if (saved.Count > 0)
        {
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            foreach (var (key, t) in saved.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                string module = key[..key.LastIndexOf('.')];
                if (model.Config.TieWordEmbeddings && (module == CausalLM.OutputLayer || module.EndsWith("embed_tokens", StringComparison.Ordinal)))
                    throw new NotSupportedException($"{file}: modules_to_save: '{module}' of a model with tied embeddings: PEFT's copy unties the input embedding from the output layer; not supported");
                if (!parameters.TryGetValue(key, out var p))
                    throw new InvalidDataException($"{file}: modules_to_save: tensor '{Prefix}{key}' is for '{key}', which the base model ({model.Config.Architecture}) does not have");
                if (!p.shape.SequenceEqual(t.shape))
                    throw new InvalidDataException($"{file}: modules_to_save: tensor '{Prefix}{key}' has shape [{string.Join(", ", t.shape)}] but the base's '{key}' is [{string.Join(", ", p.shape)}]");
                if (deltas.ContainsKey(module))
                    throw new InvalidDataException($"{file}: modules_to_save: '{module}' also has LoRA factors; PEFT wraps a module one way or the other");
            }
        }
        var untrained = model.Linears.Keys.Where(m => LoraTargets.IsTargeted(Config, m, CausalLM.OutputLayer) && !deltas.ContainsKey(m)).ToList();
        if (untrained.Count > 0)
            throw new InvalidDataException($"{file}: target_modules selects '{untrained[0]}'{(untrained.Count > 1 ? $" (and {untrained.Count - 1} more)" : "")} but the adapter has no lora_A/lora_B for it");
        if (deltas.Count == 0 && saved.Count == 0) throw new InvalidDataException($"{file}: adapter has no LoRA tensors");
    }

    /// <summary>
    /// Adds this adapter's updates to the model's layers and swaps its saved modules in; dispose the result to take
    /// them off again (the base's own tensors are put back).
    /// </summary>
    public IDisposable AttachTo(CausalLM model)
    {
        Validate(model);
        var originals = SwapSaved(model, keepOriginals: true);
        foreach (var (module, d) in deltas) model.Linears[module].Attach(d);
        return new Detacher(() =>
        {
            foreach (var (module, d) in deltas) model.Linears[module].Detach(d);
            Restore(model, originals);
        });
    }

    /// <summary>
    /// W ← W + s·B·A (DoRA: W ← m ⊙ (W + s·B·A) / ‖W + s·B·A‖ per row) in every targeted layer and the saved modules'
    /// copies in place of the base's: an explicit, irreversible change of the base weights.
    /// </summary>
    public void FoldInto(CausalLM model)
    {
        Validate(model);
        foreach (var (module, d) in deltas) model.Linears[module].Fold(d);
        SwapSaved(model, keepOriginals: false);
    }

    Dictionary<string, Tensor> SwapSaved(CausalLM model, bool keepOriginals)
    {
        var originals = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        if (saved.Count == 0) return originals;
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        using var _ = no_grad();
        foreach (var (key, t) in saved)
        {
            var p = parameters[key];
            if (keepOriginals) originals[key] = p.detach().clone().DetachFromDisposeScope();
            p.copy_(t.to(p.dtype));
        }
        return originals;
    }

    static void Restore(CausalLM model, Dictionary<string, Tensor> originals)
    {
        if (originals.Count == 0) return;
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        using var _ = no_grad();
        foreach (var (key, t) in originals) { parameters[key].copy_(t); t.Dispose(); }
        originals.Clear();
    }

    /// <summary>Writes a PEFT adapter folder; the folder appears complete or not at all.</summary>
    /// <param name="dir">the adapter folder (replaced only when complete)</param>
    /// <param name="extraFiles">writes further files (a training log, a README) into the staging folder</param>
    public void Save(string dir, Action<string>? extraFiles = null)
    {
        var tensors = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (module, d) in deltas)
        {
            tensors[$"{Prefix}{module}.lora_A.weight"] = d.A;
            tensors[$"{Prefix}{module}.lora_B.weight"] = d.B;
            if (d.Magnitude is { } m) tensors[$"{Prefix}{module}.lora_magnitude_vector"] = m;
        }
        foreach (var (key, t) in saved) tensors[$"{Prefix}{key}"] = t; // PEFT's saved form of modules_to_save
        AtomicDirectory.Write(dir, staging =>
        {
            File.WriteAllText(Path.Combine(staging, ConfigFile), Config.ToJson());
            SafeTensorsWriter.Save(Path.Combine(staging, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            extraFiles?.Invoke(staging);
        });
    }

    public void Dispose()
    {
        foreach (var d in deltas.Values) { d.A.Dispose(); d.B.Dispose(); d.Magnitude?.Dispose(); }
        deltas.Clear();
        foreach (var t in saved.Values) t.Dispose();
        saved.Clear();
    }

    sealed class Detacher(Action detach) : IDisposable
    {
        private Action? action = detach;
        public void Dispose() { action?.Invoke(); action = null; }
    }
}
