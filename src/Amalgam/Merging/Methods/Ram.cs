using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// RAM, Reinforced Agent Merging: RL fine-tunes change few, mostly disjoint entries, so plain averaging dilutes
/// each model's unique updates. Per entry, model i counts as having updated it when |δᵢ| &gt; ε; updates unique to
/// one model are kept whole and shared ones averaged over the models that made them:
/// result = θ₀ + Σ mᵢδᵢ / max(Σ mᵢ, 1), mᵢ = [|δᵢ| &gt; ε].
/// </summary>
public sealed class Ram : IMergeMethod
{
    public string Name => "ram";
    public string Description => "RAM: keep updates unique to one model whole, average shared ones over the models that made them";
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("epsilon", ParameterScope.Global, ParameterKind.Number, 1e-5, "|δ| above which an entry counts as updated", Range: NumberRange.NonNegative),
        // mergekit ignores parameters a method does not read; its own RAM recipes give weight: 0.5.
        new("weight", ParameterScope.PerModel, ParameterKind.Number, 1.0, "accepted for mergekit compatibility; no effect (RAM has no per-model weights)"),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        var b = inputs.Base ?? throw new InvalidDataException($"tensor '{inputs.Name}': ram needs a base model");
        if (inputs.Models.Count == 0) return b.clone().MoveToOuterDisposeScope();
        double eps = ParameterValues.Number(inputs.Global, "epsilon") ?? 1e-5;
        var deltas = stack(inputs.Models.Select(m => m.to(b.dtype) - b).ToList(), 0);
        var active = (deltas.abs() > eps).to(b.dtype);
        var count = active.sum(dim: 0).clamp_min(1.0);
        return (b + (deltas * active).sum(dim: 0) / count).MoveToOuterDisposeScope();
    }
}
