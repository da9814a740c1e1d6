using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// mergekit's nuslerp: slerp of exactly two models with t = w₁ / (w₀ + w₁) (0.5 when |w₀ + w₁| &lt; 1e-6); with a
/// base model, of their task vectors (θ₀ + slerp(t, θ₁ − θ₀, θ₂ − θ₀)). Per tensor flattened
/// (<c>nuslerp_flatten</c>, default true), else per row (<c>nuslerp_row_wise</c>) or per column (the last dimension).
/// Unit vectors u = v / max(‖v‖, 1e-7); Ω = acos(clamp(⟨u₀, u₁⟩, −1, 1));
/// result = (sin((1 − t)Ω)·v₀ + sin(tΩ)·v₁) / sin Ω, and (1 − t)·v₀ + t·v₁ where |sin Ω| &lt; 1e-8.
/// </summary>
public sealed class NuSlerp : IMergeMethod
{
    public string Name => "nuslerp";
    public string Description => "slerp of two models (or their task vectors over a base) with weights, flattened or per row (mergekit nuslerp)";
    public BaseModelUse BaseModel => BaseModelUse.Optional;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("weight", ParameterScope.PerModel, ParameterKind.Number, null, "relative weight; t = w₁ / (w₀ + w₁)"),
        new("nuslerp_flatten", ParameterScope.Global, ParameterKind.Bool, true, "slerp the whole tensor as one vector"),
        new("nuslerp_row_wise", ParameterScope.Global, ParameterKind.Bool, false, "without flatten: slerp rows (dim 0) instead of the last dimension"),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        if (inputs.Models.Count != 2)
            throw new InvalidDataException($"tensor '{inputs.Name}': nuslerp merges exactly two models{(inputs.Base is null ? "" : " besides the base")}, got {inputs.Models.Count}");
        double w0 = ParameterValues.PerModel(inputs, 0, "weight", double.NaN), w1 = ParameterValues.PerModel(inputs, 1, "weight", double.NaN);
        double t = Math.Abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
        bool flatten = ParameterValues.Bool(inputs.Global, "nuslerp_flatten") ?? true;
        bool rowWise = ParameterValues.Bool(inputs.Global, "nuslerp_row_wise") ?? false;
        var b = inputs.Base;
        var dtype = (b ?? inputs.Models[0]).dtype;
        var v0 = inputs.Models[0].to(dtype);
        var v1 = inputs.Models[1].to(dtype);
        if (b is not null) { v0 = v0 - b; v1 = v1 - b; }
        var res = Slerp(t, v0, v1, flatten, rowWise);
        return (b is null ? res : b + res).MoveToOuterDisposeScope();
    }

    internal static Tensor Slerp(double t, Tensor v0, Tensor v1, bool flatten, bool rowWise)
    {
        var shape = v0.shape;
        bool transposed = !flatten && rowWise && v0.dim() > 1;
        if (flatten) { v0 = v0.reshape(-1); v1 = v1.reshape(-1); }
        else if (transposed) { v0 = v0.transpose(0, -1); v1 = v1.transpose(0, -1); }
        var u0 = v0 / v0.norm(-1, keepdim: true).clamp_min(1e-7);
        var u1 = v1 / v1.norm(-1, keepdim: true).clamp_min(1e-7);
        var cos = (u0 * u1).sum(-1, keepdim: true).clamp(-1.0, 1.0);
        var theta = cos.acos();
        var sin = theta.sin();
        var colinear = sin.abs() < 1e-8;
        var spherical = ((1 - t) * theta).sin() * v0 / sin + (t * theta).sin() * v1 / sin;
        var res = where(colinear, v0 * (1 - t) + v1 * t, spherical);
        if (transposed) res = res.transpose(0, -1);
        return res.reshape(shape);
    }
}
