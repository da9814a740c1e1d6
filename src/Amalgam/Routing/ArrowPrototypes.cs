using Amalgam.Experts;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Routing;

/// <summary>One module's Arrow prototypes: a unit vector per expert [K, in] (zero rows where an expert does not adapt
/// the module) and which experts adapt it [K] (bool).</summary>
public sealed record ModulePrototypes(Tensor Vectors, Tensor Adapts);

/// <summary>
/// Arrow's expert prototypes (Ostapenko et al. 2024): for every module and every expert adapting it, the top right
/// singular vector of ΔW = s·B·A, the input direction the update amplifies most. Float32, CPU. Dispose to free.
/// </summary>
public sealed class ArrowPrototypes : IDisposable
{
    private readonly SortedDictionary<string, ModulePrototypes> modules;

    ArrowPrototypes(IReadOnlyList<string> experts, SortedDictionary<string, ModulePrototypes> modules)
    {
        Experts = experts;
        this.modules = modules;
    }

    /// <summary>The experts' names, in column order (the order of the ExpertLibrary they route).</summary>
    public IReadOnlyList<string> Experts { get; }

    /// <summary>Module name → its prototypes, for every module that at least one expert adapts.</summary>
    public IReadOnlyDictionary<string, ModulePrototypes> Modules => modules;

    /// <summary>Builds the prototypes of every module any of <paramref name="experts"/> adapts (pass them in library order).</summary>
    public static ArrowPrototypes Build(IReadOnlyList<LoraAdapter> experts)
    {
        if (experts.Count == 0) throw new ArgumentException("experts: Arrow needs at least one expert");
        foreach (var e in experts) e.RequirePlainLora("by Arrow (prototypes are singular vectors of s·B·A)");
        var names = experts.Select(e => e.Name).ToList();
        var built = new SortedDictionary<string, ModulePrototypes>(StringComparer.Ordinal);
        foreach (var module in experts.SelectMany(e => e.Deltas.Keys).Distinct().OrderBy(m => m, StringComparer.Ordinal))
        {
            using var scope = NewDisposeScope();
            var present = experts.Select(e => e.Deltas.GetValueOrDefault(module)).ToList();
            long inFeatures = present.First(d => d is not null)!.A.shape[1];
            foreach (var (d, k) in present.Select((d, k) => (d, k)))
                if (d is not null && d.A.shape[1] != inFeatures)
                    throw new ArgumentException($"{names[k]}: module '{module}' takes {d.A.shape[1]} inputs, another expert's takes {inFeatures}");
            var rows = present.Select(d => d is null ? zeros(inFeatures) : TopRightSingularVector(d)).ToArray();
            var adapts = tensor(present.Select(d => d is not null).ToArray());
            built[module] = new ModulePrototypes(stack(rows).DetachFromDisposeScope(), adapts.DetachFromDisposeScope());
        }
        return new ArrowPrototypes(names, built);
    }

    /// <summary>
    /// The top right singular vector of s·B·A [out, in] (float32, [in]) without forming it: with Aᵀ = Q·R (Q [in, r]
    /// orthonormal), s·B·A = (s·B·Rᵀ)·Qᵀ, so if s·B·Rᵀ = U·Σ·Vᵀ (an [out, r] SVD) then v = Q·V[:, 0]. Cost
    /// O(in·r² + out·r²) instead of O(out·in·r). Computed in float64. The sign of a singular vector is arbitrary;
    /// it is fixed so that the entry of largest magnitude is positive (the lowest index among equal magnitudes).
    /// </summary>
    public static Tensor TopRightSingularVector(LowRankDelta delta)
    {
        using var scope = NewDisposeScope();
        var a = delta.A.to(ScalarType.Float64).cpu();
        var b = delta.B.to(ScalarType.Float64).cpu();
        var (q, r) = linalg.qr(a.T);                                     // q [in, r'], r [r', r], r' = min(in, r)
        var (_, _, vh) = linalg.svd(b.matmul(r.T) * delta.Scale, fullMatrices: false);
        var v = q.matmul(vh[0]);
        var sign = v[v.abs().argmax()].sign();
        if (sign.item<double>() == 0) sign = ones_like(sign);
        return (v * sign).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var m in modules.Values) { m.Vectors.Dispose(); m.Adapts.Dispose(); }
        modules.Clear();
    }
}
