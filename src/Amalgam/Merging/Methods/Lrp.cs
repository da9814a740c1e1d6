using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// mergekit's lrp (LRP Merge), per tensor: δᵢ = θᵢ − θ₀ (θ₀ = 0 without a base); keep in each δᵢ the k = int(d·n)
/// entries of largest importance, and take the weight-normalised sum: θ₀ + Σ (wᵢ / Σⱼwⱼ)·mᵢ·δᵢ.
/// The importance is a per-model relevance score (Layer-wise Relevance Propagation) when mergekit is handed score
/// files by a caller of its API; a recipe cannot name them, so from a recipe mergekit (and Amalgam) always ranks by
/// |δᵢ|: lrp is then a weight-normalised magnitude-pruned task arithmetic. Ties: lower flat index first.
/// </summary>
public sealed class Lrp : IMergeMethod
{
    public string Name => "lrp";
    public string Description => "LRP Merge: keep each task vector's most important entries (|δ| from a recipe), weight-normalised sum (mergekit lrp)";
    public BaseModelUse BaseModel => BaseModelUse.Optional;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("density", ParameterScope.Global, ParameterKind.Number, 0.7, "fraction of each task vector's entries kept", Range: NumberRange.Fraction),
        new("weight", ParameterScope.PerModel, ParameterKind.Number, 1.0, "wᵢ, divided by Σ wⱼ"),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        if (inputs.Models.Count == 0) throw new InvalidDataException($"tensor '{inputs.Name}': lrp needs at least one model besides the base");
        var b = inputs.Base ?? zeros_like(inputs.Models[0]);
        double density = ParameterValues.Number(inputs.Global, "density") ?? 0.7;
        var weights = Enumerable.Range(0, inputs.Models.Count).Select(i => ParameterValues.PerModel(inputs, i, "weight", 1.0)).ToList();
        double total = weights.Sum();
        if (total == 0) throw new InvalidDataException($"tensor '{inputs.Name}': lrp: the weights sum to 0");
        var mixed = zeros_like(b);
        for (int i = 0; i < inputs.Models.Count; i++)
        {
            var delta = inputs.Models[i].to(b.dtype) - b;
            long k = Sparsifiers.KeepCount(density, delta.numel());
            var keep = Sparsifiers.TopRanked(delta.abs().reshape(-1), k).reshape(delta.shape).to(b.dtype);
            mixed.add_(delta * keep, alpha: weights[i] / total);
        }
        return (b + mixed).MoveToOuterDisposeScope();
    }
}
