using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// NearSwap (mergekit, Alsatian 2024): take the other model's value where it is close to the base's.
/// With v₀ = θ₀, v₁ the other model and d = |v₀ − v₁|: w = clamp(t / d, 0, 1) (w = 1 where d = 0),
/// result = w·v₁ + (1 − w)·v₀. Entries within t of the base are swapped entirely; far ones barely move.
/// </summary>
public sealed class NearSwap : IMergeMethod
{
    public string Name => "nearswap";
    public string Description => "interpolate toward the other model where it is within t of the base (mergekit nearswap)";
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("t", ParameterScope.Global, ParameterKind.Number, null, "similarity threshold: entries with |θ₀ − θ₁| ≤ t take θ₁", Range: NumberRange.NonNegative),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        var v0 = inputs.Base ?? throw new InvalidDataException($"tensor '{inputs.Name}': nearswap needs a base model");
        if (inputs.Models.Count != 1)
            throw new InvalidDataException($"tensor '{inputs.Name}': nearswap merges the base with exactly one other model, got {inputs.Models.Count}");
        var v1 = inputs.Models[0].to(v0.dtype);
        double t = inputs.Global.RequiredNumber("t", inputs.Name);
        var w = (t / (v0 - v1).abs()).nan_to_num(1.0, 1.0, 1.0).clamp(0.0, 1.0);
        return (w * v1 + (1 - w) * v0).MoveToOuterDisposeScope();
    }
}
