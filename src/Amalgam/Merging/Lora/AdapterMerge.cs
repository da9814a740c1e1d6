using System.Diagnostics;
using System.Text.Json;
using Amalgam.Experts;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Parts;
using Amalgam.Merging.Recipes;
using Amalgam.Models;
using Amalgam.Tensors;
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
    public static MergeSummary Run(MergeInputSet inputs, MergeOutput output, string outDir, MergeRunOptions? options = null)
    {
        options ??= new();
        var recipe = inputs.Recipe;
        var clock = Stopwatch.StartNew();
        if (!inputs.AllLora)
        {
            var dense = inputs.Models.First(m => m.Source is not LoraExpertSource).Model;
            throw new InvalidDataException($"{recipe.Source}: models[{dense.Index}].model: output: {OutputFolderFiles.OutputName(output)} needs every model to be a LoRA adapter; use output: model to merge full checkpoints");
        }
        bool peftFactorSpace = output == MergeOutput.FactorLinear && PeftFactorSpace.Supports(recipe.Method);
        if (output is MergeOutput.Cat or MergeOutput.FactorLinear && !LinearCoefficients.Supports(recipe.Method) && !peftFactorSpace)
            throw new InvalidDataException($"{recipe.Source}: output: {OutputFolderFiles.OutputName(output)} is exact only for a linear combination of the experts ({string.Join(", ", LinearCoefficients.Methods)}), not {recipe.Method.Name}{(output == MergeOutput.FactorLinear ? $" (PEFT's factor-space types: {string.Join(", ", PeftFactorSpace.Methods)}, with flavor: peft)" : "")}; use output: adapter");

        var experts = inputs.Models.Select(m => ((LoraExpertSource)m.Source).Adapter).ToList();
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
        var baseModel = inputs.Base!;
        var modules = experts.SelectMany(e => e.Deltas.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        if (options.Order is { } order) modules = order(modules).ToList();
        int rank = recipe.Rank ?? experts.Max(e => e.Deltas.Values.Max(d => (int)d.Rank));
        var notes = new List<string>();
        if (output == MergeOutput.FactorLinear)
            notes.Add($"APPROXIMATE: factor_linear mixes the A and B factors separately (PEFT's add_weighted_adapter '{(peftFactorSpace ? recipe.Method.Name : "linear")}'); the product contains cross terms Bᵢ·Aⱼ, so it is NOT {(peftFactorSpace ? $"{recipe.Method.Name} of" : "the weighted sum of")} the experts' updates. Use output: {(peftFactorSpace ? "adapter" : "cat")} for the exact result.");
        if (recipe.PeftDoubleScale)
            notes.Add("peft_double_scale: each expert's weight is multiplied by its LoRA scale sᵢ on top of ΔWᵢ = sᵢ·Bᵢ·Aᵢ, reproducing PEFT's svd types (a PEFT bug: the scale is applied twice); the result is not the recipe's merge of the experts.");

        var factors = new Dictionary<string, (Tensor A, Tensor B)>(StringComparer.Ordinal);
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
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
                read += baseModel.StoredBytes(key);
                using var scope = NewDisposeScope();
                var (a, b) = output switch
                {
                    MergeOutput.Adapter => Truncated(inputs, key, rank),
                    MergeOutput.Cat => Concatenated(inputs, experts, module, key),
                    _ when peftFactorSpace => PeftFactorSpace.Merge(inputs, experts, module),
                    _ => FactorLinear(inputs, experts, module, key),
                };
                if (!isfinite(a).all().item<bool>() || !isfinite(b).all().item<bool>())
                    throw new InvalidDataException($"tensor '{key}': the merged factors hold NaN or Inf values; nothing was written");
                factors[module] = (a.to(outType).MoveToOuterDisposeScope(), b.to(outType).MoveToOuterDisposeScope());
                ranks[module] = (int)a.shape[0];
            }
            options.Progress?.Invoke(new MergeProgress("merge", modules.Count, modules.Count, ""));

            var config = OutputConfig(recipe, baseModel, ranks, output == MergeOutput.Adapter ? rank : ranks.Values.Max());
            using var adapter = new LoraAdapter(Path.GetFileName(Path.GetFullPath(outDir).TrimEnd('/')), config, factors);
            factors.Clear(); // the adapter owns them now
            AtomicDirectory.Write(outDir, staging =>
            {
                adapter.Save(staging); // replaces the staging folder with adapter_config.json + adapter_model.safetensors
                OutputFolderFiles.WriteRecipe(recipe, staging);
                OutputFolderFiles.WriteReadme(recipe, output, staging, notes, Describe(output, config));
            });
            long written = adapter.Deltas.Values.Sum(x => x.A.numel() * x.A.element_size() + x.B.numel() * x.B.element_size());
            return new MergeSummary(Path.GetFullPath(outDir), output, modules.Count, 0, read, written, clock.Elapsed, notes);
        }
        finally
        {
            foreach (var (a, b) in factors.Values) { a.Dispose(); b.Dispose(); }
        }
    }

    static string Describe(MergeOutput output, LoraConfig c) => output switch
    {
        MergeOutput.Adapter => $"truncated SVD of (merged − base) per layer, r = {c.R}, lora_alpha = {c.LoraAlpha} (scale 1)",
        MergeOutput.Cat => $"exact concatenation of the experts' factors, r = {c.R}{(c.RankPattern is { Count: > 0 } ? " (per-module ranks in rank_pattern)" : "")}, scale 1",
        _ => $"APPROXIMATE A/B-space mixing, r = {c.R}, scale 1",
    };

    /// <summary>θ0 and θᵢ = θ0 + ΔWᵢ in the compute dtype, the method's result, and its rank-k factorisation.</summary>
    static (Tensor A, Tensor B) Truncated(MergeInputSet inputs, string key, int rank)
    {
        var recipe = inputs.Recipe;
        var shape = inputs.Base!.Describe(key).Shape;
        long full = shape.Length == 2 ? Math.Min(shape[0], shape[1]) : long.MaxValue;
        if (rank > full) // beyond min(out, in) the factors would only be padded with zeros
            throw new InvalidDataException($"{recipe.Source}: rank: {rank} exceeds min(out, in) = {full} of '{key}'; give a rank of at most {full}");
        var theta0 = inputs.Base!.Load(key, recipe.ComputeDtype).to(recipe.ComputeDtype);
        var thetas = inputs.Models.Select(m => m.Source.Load(key, recipe.ComputeDtype).to(recipe.ComputeDtype)).ToList();
        using var random = inputs.RandomFor(key);
        var tensorInputs = inputs.Inputs(key, theta0, thetas, random, null);
        if (recipe.PeftDoubleScale) tensorInputs = DoubleScaled(inputs, tensorInputs, key);
        var merged = recipe.Method.Merge(tensorInputs);
        StreamingMerge.Check(recipe, key, merged, theta0.shape);
        return LowRankFactorization.Truncate(merged - theta0, rank);
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
