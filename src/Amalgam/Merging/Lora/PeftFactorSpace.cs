using Amalgam.Experts;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Lora;

/// <summary>
/// PEFT's <c>add_weighted_adapter</c> types <c>ties</c>, <c>dare_linear</c>, <c>dare_ties</c> and <c>magnitude_prune</c>
/// (<c>output: factor_linear</c> with that method and <c>flavor: peft</c>): the method, with PEFT's conventions, run on
/// the experts' A matrices and, separately, on their B matrices, as PEFT's merge_utils does, with per-expert weights
/// √|wᵢ·sᵢ| (the sign of wᵢ·sᵢ on A; PEFT's <c>math.sqrt</c> fails for a negative one). Each factor is merged as a
/// task vector over a zero base, so sparsification, sign election and the divisor see the factors themselves.
/// APPROXIMATE: B·A then holds cross terms Bᵢ·Aⱼ and masks of A and B chosen independently, not a merge of the updates.
/// </summary>
public static class PeftFactorSpace
{
    public static readonly string[] Methods = ["ties", "dare_linear", "dare_ties", "magnitude_prune"];

    public static bool Supports(IMergeMethod method) => Methods.Contains(method.Name);

    /// <summary>Refuses a recipe whose conventions are not PEFT's: the flavor must be peft and there is no λ.</summary>
    public static void Check(MergeInputSet inputs, string tensor)
    {
        var recipe = inputs.Recipe;
        var global = inputs.Resolver.Global(tensor);
        if (TaskVectorOptions.ParseFlavor(global) != Flavor.Peft)
            throw new InvalidDataException($"{recipe.Source}: parameters.flavor: output: factor_linear with {recipe.Method.Name} is PEFT's add_weighted_adapter type of that name; set flavor: peft (or use output: adapter for the exact dense merge)");
        if (global.Has("lambda") && global.Number("lambda", 1) != 1)
            throw new InvalidDataException($"{recipe.Source}: parameters.lambda: PEFT's factor-space types have no lambda (it would scale A and B, so the update by λ²); fold it into the weights");
        if (ParameterValues.Choice(global, "trim_scope", TaskVectorOptions.TrimScopeNames) == "model")
            throw new InvalidDataException($"{recipe.Source}: parameters.trim_scope: PEFT trims each factor on its own (tensor)");
    }

    /// <summary>The merged A [r, in] and B [out, r] of one module, in the compute dtype.</summary>
    public static (Tensor A, Tensor B) Merge(MergeInputSet inputs, IReadOnlyList<LoraAdapter> experts, string module) =>
        Merge(inputs, experts, module, masks: null);

    /// <summary>
    /// The seam for reference tests: <paramref name="masks"/> gives, per factor name (<c>&lt;module&gt;.lora_A.weight</c>),
    /// the keep-masks of the experts that target the module, replacing DARE's random draw.
    /// </summary>
    internal static (Tensor A, Tensor B) Merge(MergeInputSet inputs, IReadOnlyList<LoraAdapter> experts, string module, Func<string, IReadOnlyList<Tensor>>? masks)
    {
        string key = module + ".weight";
        Check(inputs, key);
        var dtype = inputs.Recipe.ComputeDtype;
        var present = experts.Select((e, i) => (Delta: e.Deltas.GetValueOrDefault(module), Index: i)).Where(x => x.Delta is not null).ToList();
        if (present.Select(x => x.Delta!.Rank).Distinct().Count() > 1)
            throw new InvalidDataException($"tensor '{key}': output: factor_linear needs one rank for every expert (got {string.Join(", ", present.Select(x => x.Delta!.Rank))}); use output: cat or adapter");
        var perModel = present.Select(x => inputs.Resolver.ForModel(inputs.Models[x.Index].Model, key)).ToList();
        var global = inputs.Resolver.Global(key);
        var products = present.Select((x, j) => (perModel[j].Has("weight") ? perModel[j].Number("weight", 1) : global.Number("weight", 1)) * x.Delta!.Scale).ToList();
        var roots = products.Select(p => Math.Sqrt(Math.Abs(p))).ToList();
        var a = Mix(inputs, module + ".lora_A.weight", present.Select(x => x.Delta!.A.to(dtype)).ToList(), perModel, global, roots.Select((r, j) => Math.Sign(products[j]) * r).ToList(), masks);
        var b = Mix(inputs, module + ".lora_B.weight", present.Select(x => x.Delta!.B.to(dtype)).ToList(), perModel, global, roots, masks);
        return (a, b);
    }

    /// <summary>The recipe's method over (zero base, factors) with each model's weight replaced; randomness drawn per factor name.</summary>
    static Tensor Mix(MergeInputSet inputs, string name, List<Tensor> factors, List<MergeParameters> perModel, MergeParameters global, List<double> weights,
        Func<string, IReadOnlyList<Tensor>>? masks)
    {
        var parameters = perModel.Select((p, j) =>
        {
            var values = p.Values.ToDictionary(kv => kv.Key, kv => kv.Value);
            values["weight"] = weights[j];
            return new MergeParameters(values);
        }).ToList();
        using var random = inputs.RandomFor(name);
        using var zero = zeros_like(factors[0]);
        var tensorInputs = new MergeTensorInputs(name, zero, factors, parameters, global, random);
        return masks is not null && inputs.Recipe.Method is Methods.TaskVectorMethod pipeline
            ? pipeline.Merge(tensorInputs, masks(name))
            : inputs.Recipe.Method.Merge(tensorInputs);
    }
}
