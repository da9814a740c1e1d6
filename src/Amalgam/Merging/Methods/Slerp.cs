using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// Spherical interpolation between the base (t = 0) and one other model (t = 1), per tensor, flattened:
/// with unit directions v₀, v₁ and cos Ω = ⟨v₀, v₁⟩, result = sin((1−t)Ω)/sin Ω · θ₀ + sin(tΩ)/sin Ω · θ₁;
/// plain lerp when |cos Ω| &gt; 0.9995. A norm ≤ 1e-8 is not normalised (as mergekit).
/// </summary>
public sealed class Slerp : IMergeMethod
{
    public const double DotThreshold = 0.9995;

    public string Name => "slerp";
    public string Description => "spherical linear interpolation between the base and one other model (Shoemake 1985)";
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("t", ParameterScope.Global, ParameterKind.Number, null, "interpolation factor: 0 = base, 1 = the other model", Range: NumberRange.Fraction),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        var v0 = inputs.Base ?? throw new InvalidDataException($"tensor '{inputs.Name}': slerp needs a base model");
        if (inputs.Models.Count != 1)
            throw new InvalidDataException($"tensor '{inputs.Name}': slerp merges the base with exactly one other model, got {inputs.Models.Count}");
        var v1 = inputs.Models[0].to(v0.dtype);
        double t = inputs.Global.RequiredNumber("t", inputs.Name);

        double n0 = v0.norm().ToDouble(), n1 = v1.norm().ToDouble();
        var u0 = n0 > 1e-8 ? v0 / n0 : v0;
        var u1 = n1 > 1e-8 ? v1 / n1 : v1;
        double dot = (u0 * u1).sum().ToDouble();
        Tensor res;
        if (Math.Abs(dot) > DotThreshold)
            res = v0 * (1 - t) + v1 * t;
        else
        {
            double theta0 = Math.Acos(dot), sin0 = Math.Sin(theta0);
            double s0 = Math.Sin(theta0 - theta0 * t) / sin0, s1 = Math.Sin(theta0 * t) / sin0;
            res = v0 * s0 + v1 * s1;
        }
        return res.MoveToOuterDisposeScope();
    }
}
