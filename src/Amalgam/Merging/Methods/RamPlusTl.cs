using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// RAM+ (tensor-local), mergekit's <c>ramplus_tl</c>: RAM, with each model's unique updates amplified by how much
/// of what it changed in this tensor is shared. With mᵢ = [|δᵢ| &gt; ε] and c = Σ mᵢ per entry, per model
/// Sᵢ = #(mᵢ ∧ c &gt; 1), Uᵢ = #(mᵢ ∧ c = 1), ρᵢ = Sᵢ / max(Uᵢ, ε), λᵢ = 1 + r·clamp(ρᵢ, 0, α);
/// result = θ₀ + Σᵢ mᵢδᵢ·([c = 1]·λᵢ + [c &gt; 1]/c).
/// </summary>
public sealed class RamPlusTl : IMergeMethod
{
    public string Name => "ramplus_tl";
    public string Description => "RAM+ (tensor-local): RAM with each model's unique updates scaled by 1 + r·min(shared/unique, alpha)";
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("r", ParameterScope.Global, ParameterKind.Number, 0.1, "strength of the amplification of unique updates"),
        new("alpha", ParameterScope.Global, ParameterKind.Number, 0.2, "cap on the shared/unique ratio"),
        new("epsilon", ParameterScope.Global, ParameterKind.Number, 1e-5, "|δ| above which an entry counts as updated"),
        // mergekit ignores parameters a method does not read; its own RAM recipes give weight: 0.5.
        new("weight", ParameterScope.PerModel, ParameterKind.Number, 1.0, "accepted for mergekit compatibility; no effect (RAM has no per-model weights)"),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        var b = inputs.Base ?? throw new InvalidDataException($"tensor '{inputs.Name}': ramplus_tl needs a base model");
        if (inputs.Models.Count == 0) return b.clone().MoveToOuterDisposeScope();
        double r = ParameterValues.Number(inputs.Global, "r") ?? 0.1;
        double alpha = ParameterValues.Number(inputs.Global, "alpha") ?? 0.2;
        double eps = ParameterValues.Number(inputs.Global, "epsilon") ?? 1e-5;
        var deltas = stack(inputs.Models.Select(m => m.to(b.dtype) - b).ToList(), 0);
        var active = deltas.abs() > eps;
        var count = active.sum(dim: 0, type: ScalarType.Int64);
        var unique = count.eq(1);
        var shared = count.gt(1);
        long dims = deltas.dim();
        var rest = Enumerable.Range(1, (int)dims - 1).Select(d => (long)d).ToArray();
        var perModel = rest.Length == 0 ? (Func<Tensor, Tensor>)(t => t.to(ScalarType.Float64)) : t => t.sum(rest, type: ScalarType.Float64);
        var s = perModel(active.logical_and(shared));
        var u = perModel(active.logical_and(unique));
        var lambda = (s / u.clamp_min(eps)).clamp(0, alpha) * r + 1;                    // [models], float64
        var shape = new long[dims];
        Array.Fill(shape, 1L);
        shape[0] = -1;
        var weight = unique.to(b.dtype) * lambda.to(b.dtype).reshape(shape) + shared.to(b.dtype) / count.clamp_min(1).to(b.dtype);
        return (b + (deltas * active.to(b.dtype) * weight).sum(dim: 0)).MoveToOuterDisposeScope();
    }
}
