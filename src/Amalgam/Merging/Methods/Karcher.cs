using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// mergekit's karcher: the Karcher (Riemannian) mean of the models' directions on the unit sphere, rescaled by their
/// mean norm; per tensor flattened, equal weights αᵢ = 1/N. Models with norm ≤ tol are left out of the direction.
/// Start u = normalised Σ αᵢuᵢ (u₁ if that is ≤ tol); repeat at most <c>max_iter</c> times:
/// T = Σ αᵢ·θᵢ/sin θᵢ·(uᵢ − cos θᵢ·u) over models with θᵢ = acos(clamp(⟨u, uᵢ⟩, −1, 1)) ≥ tol; stop when ‖T‖ &lt; tol;
/// u ← normalise(cos‖T‖·u + sin‖T‖·T/‖T‖). Result (Σ αᵢ‖vᵢ‖)·u. The αᵢ of the direction are renormalised over the
/// models kept.
/// </summary>
public sealed class Karcher : IMergeMethod
{
    public string Name => "karcher";
    public string Description => "Karcher mean of the models on the sphere, scaled by their mean norm (mergekit karcher)";
    public BaseModelUse BaseModel => BaseModelUse.Unused;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("max_iter", ParameterScope.Global, ParameterKind.Number, 10.0, "most fixed-point iterations", Range: new NumberRange(1, 10_000, Integer: true)),
        new("tol", ParameterScope.Global, ParameterKind.Number, 1e-5, "convergence tolerance (also the smallest norm counted)", Range: NumberRange.Positive),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        int n = inputs.Models.Count;
        if (n == 0) throw new InvalidDataException($"tensor '{inputs.Name}': karcher needs at least one model");
        var dtype = inputs.Models[0].dtype;
        if (n == 1) return inputs.Models[0].clone().MoveToOuterDisposeScope();
        int maxIter = (int)(Parts.ParameterValues.Number(inputs.Global, "max_iter") ?? 10);
        double tol = Parts.ParameterValues.Number(inputs.Global, "tol") ?? 1e-5;
        var vs = inputs.Models.Select(m => m.to(dtype).reshape(-1)).ToList();
        var norms = vs.Select(v => v.norm().ToDouble()).ToArray();
        var valid = Enumerable.Range(0, n).Where(i => norms[i] > tol).ToList();
        var shape = inputs.Models[0].shape;
        if (valid.Count == 0) return zeros_like(inputs.Models[0]).MoveToOuterDisposeScope();
        double alpha = 1.0 / valid.Count;
        var units = valid.Select(i => vs[i] / norms[i]).ToList();
        var u = zeros_like(units[0]);
        foreach (var ui in units) u = u + ui * alpha;
        double nu = u.norm().ToDouble();
        u = nu < tol ? units[0].clone() : u / nu;
        for (int it = 0; it < maxIter; it++)
        {
            var T = zeros_like(u);
            foreach (var ui in units)
            {
                double dot = Math.Clamp((u * ui).sum().ToDouble(), -1, 1);
                double theta = Math.Acos(dot);
                if (theta < tol) continue;
                T = T + (ui - u * dot) * (alpha * theta / Math.Sin(theta));
            }
            double nt = T.norm().ToDouble();
            if (nt < tol) break;
            u = u * Math.Cos(nt) + T * (Math.Sin(nt) / nt);
            double un = u.norm().ToDouble();
            if (un > tol) u = u / un;
        }
        double scale = norms.Sum() / n;
        return (u * scale).reshape(shape).MoveToOuterDisposeScope();
    }
}
