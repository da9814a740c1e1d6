using System.Diagnostics;
using System.Text.Json;
using Amalgam.Experts;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Parts;
using Amalgam.Merging.Recipes;
using Amalgam.Models;
using Amalgam.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Merging.Lora;

/// <summary>
/// Merges LoRA experts into a PEFT adapter, one targeted layer at a time, in the exact dense update space:
/// θ0 = the base weight, θᵢ = θ0 + sᵢ·Bᵢ·Aᵢ; layers no expert targets keep the base and are not in the output.
/// <list type="bullet">
/// <item><c>adapter</c>: the method's result minus θ0, factored by truncated SVD at rank k (lora_alpha = r: scale 1).</item>
/// <item><c>cat</c>: the exact concatenation (A rows cᵢ·sᵢ·Aᵢ, B columns Bᵢ), checked against the method's dense result.</item>
/// <item><c>factor_linear</c>: PEFT's A/B-space mixing, A = Σ sign·√|cᵢsᵢ|·Aᵢ, B = Σ √|cᵢsᵢ|·Bᵢ: APPROXIMATE (cross terms Bᵢ·Aⱼ).</item>
/// </list>
/// </summary>
public static class AdapterMerge
{
    /// <summary>An adapter built in memory, before it is saved.</summary>
    public sealed record Built(LoraAdapter Adapter, LoraConfig Config, List<string> Notes, TruncationReport? Report, int Modules, long BytesRead);

    public static MergeSummary Run(MergeInputSet inputs, MergeOutput output, string outDir, MergeRunOptions? options = null)
    {
        options ??= new();
        var recipe = inputs.Recipe;
        var clock = Stopwatch.StartNew();
        var built = Build(inputs, output, Path.GetFileName(Path.GetFullPath(outDir).TrimEnd('/')), options);
        using var adapter = built.Adapter;
        AtomicDirectory.Write(outDir, staging =>
        {
            adapter.Save(staging); // replaces the staging folder with adapter_config.json + adapter_model.safetensors
            OutputFolderFiles.WriteRecipe(recipe, staging, options.RecipeYaml);
            OutputFolderFiles.WriteReadme(recipe, output, staging, built.Notes, Describe(output, built.Config), built.Report?.Markdown());
        });
        long written = adapter.Deltas.Values.Sum(x => x.A.numel() * x.A.element_size() + x.B.numel() * x.B.element_size());
        var notes = built.Report is { } r ? [.. built.Notes, r.Summary] : built.Notes;
        return new MergeSummary(Path.GetFullPath(outDir), output, built.Modules, 0, built.BytesRead, written, clock.Elapsed, notes);
    }

    /// <summary>Merges (or extracts) every module into factors; the caller owns the adapter.</summary>
    public static Built Build(MergeInputSet inputs, MergeOutput output, string name, MergeRunOptions options)
    {
        var recipe = inputs.Recipe;
        if (inputs.Base is null)
            throw new InvalidDataException($"{recipe.Source}: base_model: missing; output: {OutputFolderFiles.OutputName(output)} stores merged − base, so it needs the base");
        if (inputs.AnyLora && !inputs.AllLora)
        {
            var dense = inputs.Models.First(m => m.Source is not LoraExpertSource).Model;
            throw new InvalidDataException($"{recipe.Source}: models[{dense.Index}].model: output: {OutputFolderFiles.OutputName(output)} needs every model to be a LoRA adapter (or every model a full checkpoint, to extract a LoRA); use output: model to merge both kinds");
        }
        bool peftFactorSpace = output == MergeOutput.FactorLinear && PeftFactorSpace.Supports(recipe.Method);
        if (output is MergeOutput.Cat or MergeOutput.FactorLinear)
        {
            if (!inputs.AllLora)
            {
                var dense = inputs.Models.First(m => m.Source is not LoraExpertSource).Model;
                throw new InvalidDataException($"{recipe.Source}: models[{dense.Index}].model: output: {OutputFolderFiles.OutputName(output)} recombines LoRA factors, so it needs every model to be a LoRA adapter; use output: adapter (truncated SVD, also from full fine-tunes) or output: model");
            }
            if (!LinearCoefficients.Supports(recipe.Method) && !peftFactorSpace)
                throw new InvalidDataException($"{recipe.Source}: output: {OutputFolderFiles.OutputName(output)} is exact only for a linear combination of the experts ({string.Join(", ", LinearCoefficients.Methods)}), not {recipe.Method.Name}{(output == MergeOutput.FactorLinear ? $" (PEFT's factor-space types: {string.Join(", ", PeftFactorSpace.Methods)}, with flavor: peft)" : "")}; use output: adapter");
        }

        var baseModel = inputs.Base;
        var experts = inputs.AllLora ? inputs.Models.Select(m => ((LoraExpertSource)m.Source).Adapter).ToList() : [];
        for (int i = 0; i < experts.Count; i++)
        {
            string where = $"{recipe.Source}: models[{inputs.Models[i].Model.Index}] ({inputs.Models[i].Source.Path})";
            // A saved module is a full copy: an adapter output holds low-rank updates only.
            if (experts[i].SavedTensors.Keys.Order(StringComparer.Ordinal).FirstOrDefault() is { } saved)
                throw new NotSupportedException($"{where}: modules_to_save: module '{saved[..saved.LastIndexOf('.')]}' is a full copy that output: {OutputFolderFiles.OutputName(output)} cannot hold; use output: model");
            // output: adapter merges the DoRA expert's folded weights exactly; the factor outputs recombine s·B·A, which DoRA is not.
            if (output != MergeOutput.Adapter && experts[i].Deltas.FirstOrDefault(d => d.Value.IsDora) is { Key: { } dora })
                throw new NotSupportedException($"{where}: tensor 'base_model.model.{dora}.lora_magnitude_vector': output: {OutputFolderFiles.OutputName(output)} recombines factors s·B·A, which a DoRA update is not; use output: adapter or model (they merge the folded DoRA weights)");
        }
        // LoRA experts: the modules they target. Full fine-tunes (extraction): every 2-D weight outside the embeddings.
        var modules = inputs.AllLora
            ? experts.SelectMany(e => e.Deltas.Keys).Distinct().Order(StringComparer.Ordinal).ToList()
            : inputs.Names.Where(n => IsDecomposable(n, baseModel)).Select(n => n[..^".weight".Length]).ToList();
        if (options.Order is { } order) modules = order(modules).ToList();
        int? rank = recipe.MaxError is not null ? null : recipe.Rank ?? (inputs.AllLora ? experts.Max(e => e.Deltas.Values.Max(d => (int)d.Rank)) : null);
        if (rank is null && recipe.MaxError is null)
            throw new InvalidDataException($"{recipe.Source}: rank: missing; extracting a LoRA from full models needs rank: N or rank: auto (with max_error)");
        if (output == MergeOutput.Adapter && rank is { } wanted && modules.Count > 0)
        {
            // beyond min(out, in) of every module the factors would only be padded with zeros
            var (widest, full) = modules.Select(m => (m, baseModel.Contains(m + ".weight") ? baseModel.Describe(m + ".weight").Shape : [])).Where(x => x.Item2.Length == 2)
                .Select(x => (x.m, Math.Min(x.Item2[0], x.Item2[1]))).MaxBy(x => x.Item2);
            if (widest is not null && wanted > full)
                throw new InvalidDataException($"{recipe.Source}: rank: {wanted} exceeds min(out, in) = {full} of '{widest}.weight'; give a rank of at most {full}");
        }
        var notes = new List<string>();
        if (output == MergeOutput.FactorLinear)
            notes.Add($"APPROXIMATE: factor_linear mixes the A and B factors separately (PEFT's add_weighted_adapter '{(peftFactorSpace ? recipe.Method.Name : "linear")}'); the product contains cross terms Bᵢ·Aⱼ, so it is NOT {(peftFactorSpace ? $"{recipe.Method.Name} of" : "the weighted sum of")} the experts' updates. Use output: {(peftFactorSpace ? "adapter" : "cat")} for the exact result.");
        if (recipe.PeftDoubleScale)
            notes.Add("peft_double_scale: each expert's weight is multiplied by its LoRA scale sᵢ on top of ΔWᵢ = sᵢ·Bᵢ·Aᵢ, reproducing PEFT's svd types (a PEFT bug: the scale is applied twice); the result is not the recipe's merge of the experts.");
        if (!inputs.AllLora) notes.AddRange(CheckUndecomposable(inputs));

        var factors = new Dictionary<string, (Tensor A, Tensor B)>(StringComparer.Ordinal);
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        var truncation = new List<ModuleTruncation>();
        long read = 0;
        var outType = recipe.OutDtype ?? (recipe.Dtype is { } d && d != ScalarType.Float64 ? d : ScalarType.Float32);
        try
        {
            for (int i = 0; i < modules.Count; i++)
            {
                string module = modules[i], key = module + ".weight";
                options.Progress?.Invoke(new MergeProgress("merge", i, modules.Count, key));
                if (!baseModel.Contains(key))
                {
                    int who = experts.FindIndex(e => e.Deltas.ContainsKey(module));
                    throw new InvalidDataException($"models[{inputs.Models[who].Model.Index}] ({inputs.Models[who].Source.Path}): targets '{module}', which the base model has no '{key}' for");
                }
                read += baseModel.StoredBytes(key) * (inputs.AllLora ? 1 : 1 + inputs.Models.Count);
                using var scope = NewDisposeScope();
                Tensor a, b;
                if (output == MergeOutput.Adapter)
                {
                    var delta = MergedDelta(inputs, key);
                    if (!inputs.AllLora && delta.abs().max().ToDouble() == 0) continue; // extraction: nothing changed here
                    var (ta, tb, k, err) = TruncationReport.Truncate(delta, rank, recipe.MaxError);
                    truncation.Add(new ModuleTruncation(module, k, err));
                    (a, b) = Pad(ta, tb, k);
                }
                else (a, b) = output == MergeOutput.Cat ? Concatenated(inputs, experts, module, key)
                    : peftFactorSpace ? PeftFactorSpace.Merge(inputs, experts, module)
                    : FactorLinear(inputs, experts, module, key);
                if (!isfinite(a).all().item<bool>() || !isfinite(b).all().item<bool>())
                    throw new InvalidDataException($"tensor '{key}': the merged factors hold NaN or Inf values; nothing was written");
                factors[module] = (StreamingMerge.Stored(recipe, key, a, outType).MoveToOuterDisposeScope(), StreamingMerge.Stored(recipe, key, b, outType).MoveToOuterDisposeScope());
                ranks[module] = (int)a.shape[0];
            }
            options.Progress?.Invoke(new MergeProgress("merge", modules.Count, modules.Count, ""));
            if (factors.Count == 0) throw new InvalidDataException($"{recipe.Source}: models: no 2-D weight differs from the base; there is nothing to extract");

            var config = OutputConfig(recipe, baseModel, ranks, output == MergeOutput.Adapter && rank is { } r ? r : ranks.Values.Max());
            var adapter = new LoraAdapter(name, config, factors);
            factors.Clear(); // the adapter owns them now
            var report = output == MergeOutput.Adapter ? new TruncationReport(truncation, rank, recipe.MaxError) : null;
            return new Built(adapter, config, notes, report, ranks.Count, read);
        }
        finally
        {
            foreach (var (a, b) in factors.Values) { a.Dispose(); b.Dispose(); }
        }
    }

    /// <summary>Rows/columns of zeros up to the declared rank when a module's SVD has fewer singular values (min(out, in) &lt; k).</summary>
    static (Tensor A, Tensor B) Pad(Tensor a, Tensor b, int rank)
    {
        long k = a.shape[0];
        if (k >= rank) return (a, b);
        return (cat([a, zeros(rank - k, a.shape[1], dtype: a.dtype)], 0), cat([b, zeros(b.shape[0], rank - k, dtype: b.dtype)], 1));
    }

    /// <summary>2-D <c>.weight</c> tensors outside the embeddings and lm_head: what a LoRA adapter can hold.</summary>
    static bool IsDecomposable(string name, CheckpointSource baseModel) =>
        name.EndsWith(".weight", StringComparison.Ordinal) && baseModel.Describe(name).Shape.Length == 2
        && !name.Contains("embed_tokens", StringComparison.Ordinal) && !name.Contains(CausalLM.OutputLayer, StringComparison.Ordinal);

    /// <summary>
    /// Extraction: tensors a LoRA cannot hold (norms, biases, embeddings, lm_head) must come out of the merge equal to
    /// the base, or be skipped by <c>skip_undecomposable: true</c> (mergekit-extract-lora's --skip-undecomposable),
    /// which the README then lists.
    /// </summary>
    static IEnumerable<string> CheckUndecomposable(MergeInputSet inputs)
    {
        var recipe = inputs.Recipe;
        var changed = new List<string>();
        foreach (var n in inputs.Names.Where(n => !IsDecomposable(n, inputs.Base!)))
        {
            var (dtype, _) = inputs.Base!.Describe(n);
            if (dtype is not (DType.F32 or DType.F16 or DType.BF16)) continue;
            using var scope = NewDisposeScope();
            if (MergedDelta(inputs, n).abs().max().ToDouble() != 0) changed.Add(n);
        }
        if (changed.Count == 0) yield break;
        string list = string.Join(", ", changed.Take(6)) + (changed.Count > 6 ? $", ... ({changed.Count} in all)" : "");
        if (!recipe.SkipUndecomposable)
            throw new InvalidDataException($"{recipe.Source}: output: adapter: {list} differ from the base but are not 2-D linear weights, so a LoRA adapter cannot hold them; set skip_undecomposable: true to leave them at the base's values, or use output: model");
        yield return $"skip_undecomposable: {list} differ from the base and are NOT in the adapter (it keeps the base's values there)";
    }

    /// <summary>The method's result minus θ0 at one key, in the compute dtype (θᵢ = θ0 + ΔWᵢ for LoRA experts).</summary>
    static Tensor MergedDelta(MergeInputSet inputs, string key)
    {
        var recipe = inputs.Recipe;
        var theta0 = inputs.Base!.Load(key, recipe.ComputeDtype).to(recipe.ComputeDtype);
        var thetas = inputs.Models.Select(m => m.Source.Load(key, recipe.ComputeDtype).to(recipe.ComputeDtype)).ToList();
        using var random = inputs.RandomFor(key);
        var tensorInputs = inputs.Inputs(key, theta0, thetas, random, null);
        if (recipe.PeftDoubleScale) tensorInputs = DoubleScaled(inputs, tensorInputs, key);
        var merged = recipe.Method.Merge(tensorInputs);
        StreamingMerge.Check(recipe, key, merged, theta0.shape);
        return merged - theta0;
    }

    /// <summary>
    /// PEFT's svd types weight ΔWᵢ = sᵢ·Bᵢ·Aᵢ (already scaled) by wᵢ·sᵢ: the weight of each expert that targets this
    /// layer is multiplied by its scale sᵢ once more. Only with <c>peft_double_scale: true</c>.
    /// </summary>
    static MergeTensorInputs DoubleScaled(MergeInputSet inputs, MergeTensorInputs tensorInputs, string key)
    {
        string module = key[..^".weight".Length];
        var parameters = tensorInputs.ModelParameters.Select((p, i) =>
        {
            var adapter = ((LoraExpertSource)inputs.Models[i].Source).Adapter;
            if (adapter.Deltas.GetValueOrDefault(module) is not { } delta) return p;
            if (delta.IsDora)
                throw new NotSupportedException($"{inputs.Recipe.Source}: peft_double_scale: models[{inputs.Models[i].Model.Index}]: tensor 'base_model.model.{module}.lora_magnitude_vector': a DoRA update has no single scale to apply twice");
            var values = p.Values.ToDictionary(kv => kv.Key, kv => kv.Value);
            values["weight"] = ParameterValues.PerModel(tensorInputs, i, "weight", 1.0) * delta.Scale;
            return new MergeParameters(values);
        }).ToList();
        return tensorInputs with { ModelParameters = parameters };
    }

    static string Describe(MergeOutput output, LoraConfig c) => output switch
    {
        MergeOutput.Adapter => $"truncated SVD of (merged − base) per layer, r = {c.R}{(c.RankPattern is { Count: > 0 } ? " (per-module ranks in rank_pattern)" : "")}, lora_alpha = r (scale 1); see the truncation error below",
        MergeOutput.Cat => $"exact concatenation of the experts' factors, r = {c.R}{(c.RankPattern is { Count: > 0 } ? " (per-module ranks in rank_pattern)" : "")}, scale 1",
        _ => $"APPROXIMATE A/B-space mixing, r = {c.R}, scale 1",
    };

    /// <summary>A rows cᵢ·sᵢ·Aᵢ and B columns Bᵢ of every expert that targets the layer; verified against the method itself.</summary>
    static (Tensor A, Tensor B) Concatenated(MergeInputSet inputs, List<LoraAdapter> experts, string module, string key)
    {
        var c = LinearCoefficients.For(inputs, key);
        var dtype = inputs.Recipe.ComputeDtype;
        var present = experts.Select((e, i) => (Delta: e.Deltas.GetValueOrDefault(module), Coefficient: c[i])).Where(x => x.Delta is not null).ToList();
        var a = cat(present.Select(x => x.Delta!.A.to(dtype) * (x.Coefficient * x.Delta.Scale)).ToList(), 0);
        var b = cat(present.Select(x => x.Delta!.B.to(dtype)).ToList(), 1);
        VerifyLinear(inputs, key, b.matmul(a));
        return (a, b);
    }

    /// <summary>PEFT: A = Σ √(wᵢsᵢ)·Aᵢ, B = Σ √(wᵢsᵢ)·Bᵢ (a negative coefficient's sign goes on A); all ranks must agree.</summary>
    static (Tensor A, Tensor B) FactorLinear(MergeInputSet inputs, List<LoraAdapter> experts, string module, string key)
    {
        var c = LinearCoefficients.For(inputs, key);
        var dtype = inputs.Recipe.ComputeDtype;
        var present = experts.Select((e, i) => (Delta: e.Deltas.GetValueOrDefault(module), Coefficient: c[i], Index: i)).Where(x => x.Delta is not null).ToList();
        if (present.Select(x => x.Delta!.Rank).Distinct().Count() > 1)
            throw new InvalidDataException($"tensor '{key}': factor_linear needs one rank for every expert (got {string.Join(", ", present.Select(x => x.Delta!.Rank))}); use output: cat or adapter");
        Tensor? a = null, b = null;
        foreach (var (delta, coefficient, _) in present)
        {
            double product = coefficient * delta!.Scale;
            double root = Math.Sqrt(Math.Abs(product));
            var ai = delta.A.to(dtype) * (Math.Sign(product) * root);
            var bi = delta.B.to(dtype) * root;
            a = a is null ? ai : a + ai;
            b = b is null ? bi : b + bi;
        }
        return (a!, b!);
    }

    /// <summary>The method run densely must equal θ0 + the concatenated product; otherwise the method is not the linear combination assumed.</summary>
    static void VerifyLinear(MergeInputSet inputs, string key, Tensor product)
    {
        var recipe = inputs.Recipe;
        var theta0 = inputs.Base!.Load(key, recipe.ComputeDtype).to(recipe.ComputeDtype);
        var thetas = inputs.Models.Select(m => m.Source.Load(key, recipe.ComputeDtype).to(recipe.ComputeDtype)).ToList();
        var merged = recipe.Method.Merge(inputs.Inputs(key, theta0, thetas, null, null));
        StreamingMerge.Check(recipe, key, merged, theta0.shape);
        double err = (merged - theta0 - product).abs().max().item<float>();
        double scale = Math.Max(theta0.abs().max().item<float>(), product.abs().max().item<float>()) + 1e-12;
        if (err > 1e-4 * scale)
            throw new InvalidDataException($"tensor '{key}': {recipe.Method.Name} did not produce the linear combination that output: cat writes (max difference {err:G3}); use output: adapter");
    }

    /// <summary>
    /// r and lora_alpha equal (scale 1, no rsLoRA); target_modules the leaf names when they cover every such layer of
    /// the base, full module names otherwise; modules of another rank get rank_pattern and alpha_pattern entries.
    /// </summary>
    static LoraConfig OutputConfig(MergeRecipe recipe, CheckpointSource baseModel, Dictionary<string, int> ranks, int r)
    {
        var baseLinear = baseModel.Names.Where(n => n.EndsWith(".weight", StringComparison.Ordinal) && baseModel.Describe(n).Shape.Length == 2)
            .Select(n => n[..^".weight".Length]).ToList();
        static string Leaf(string m) => m[(m.LastIndexOf('.') + 1)..];
        var targets = new List<string>();
        foreach (var group in ranks.Keys.GroupBy(Leaf).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            bool covers = baseLinear.Where(m => Leaf(m) == group.Key).All(ranks.ContainsKey);
            targets.AddRange(covers ? [group.Key] : group.Order(StringComparer.Ordinal));
        }
        // Plain suffixes that PEFT 0.10 to the newest all match (see LoraTargets.WrittenPatternKey).
        var odd = ranks.Where(kv => kv.Value != r).ToDictionary(kv => LoraTargets.WrittenPatternKey(kv.Key, baseLinear), kv => kv.Value);
        return new LoraConfig
        {
            R = r,
            LoraAlpha = r,
            UseRslora = false,
            TargetModules = JsonSerializer.SerializeToElement(targets),
            RankPattern = odd,
            AlphaPattern = odd.ToDictionary(kv => kv.Key, kv => (double)kv.Value),
            BaseModelNameOrPath = recipe.BaseModel,
            Source = "merged adapter_config.json",
        };
    }
}
