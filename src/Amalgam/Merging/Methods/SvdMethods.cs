using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// Shared rules of the SVD-space methods: only 2-D tensors whose name contains neither <c>embed_tokens</c> nor
/// <c>lm_head</c> are treated as matrices; every other tensor gets the mean of the weighted task vectors.
/// The result is θ₀ + λ·Δ.
/// </summary>
public abstract class SvdMergeMethod : IMergeMethod
{
    public abstract string Name { get; }
    public abstract string Description { get; }
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("lambda", ParameterScope.Global, ParameterKind.Number, 1.0, "scales the merged task vector (the papers' α)"),
        new("weight", ParameterScope.PerModel, ParameterKind.Number, 1.0, "wᵢ, multiplies the model's task vector before merging"),
    ];

    public static bool IsMatrix(string name, Tensor t) => t.dim() == 2 && !name.Contains("embed_tokens") && !name.Contains("lm_head");

    protected abstract Tensor MergeMatrix(IReadOnlyList<Tensor> deltas);

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        var b = inputs.Base ?? throw new InvalidDataException($"tensor '{inputs.Name}': {Name} needs a base model");
        if (inputs.Models.Count == 0) return b.clone().MoveToOuterDisposeScope();
        var deltas = inputs.Models.Select((m, i) => (m.to(b.dtype) - b) * ParameterValues.PerModel(inputs, i, "weight", 1.0)).ToList();
        var merged = IsMatrix(inputs.Name, b) ? MergeMatrix(deltas) : stack(deltas, 0).mean([0L]);
        double lambda = ParameterValues.Number(inputs.Global, "lambda") ?? 1.0;
        return (b + merged * lambda).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// TSV-Merge (Gargiulo et al., CVPR 2025): for each task i, the top k = int(r / T) singular triplets of δᵢ
/// (r = min(m, n), T tasks) are placed side by side in U [m × r], σ [r] and Vᵀ [r × n] (unused slots zero); U and Vᵀ
/// are replaced by their nearest orthogonal matrices (polar factors P·Qᵀ of their SVDs, which decorrelates the
/// tasks' subspaces); Δ = U⊥ diag(σ) V⊥ᵀ.
/// </summary>
public sealed class TsvMerge : SvdMergeMethod
{
    public override string Name => "tsv";
    public override string Description => "Task Singular Vectors merge: per-task low-rank SVD, orthogonalised across tasks (Gargiulo et al. 2025)";

    protected override Tensor MergeMatrix(IReadOnlyList<Tensor> deltas)
    {
        int tasks = deltas.Count;
        long m = deltas[0].shape[0], n = deltas[0].shape[1], r = Math.Min(m, n);
        long k = (long)Math.Floor(r * (1.0 / tasks));
        var u = zeros(m, r, dtype: deltas[0].dtype);
        var s = zeros(r, dtype: deltas[0].dtype);
        var vh = zeros(r, n, dtype: deltas[0].dtype);
        if (k == 0) return zeros_like(deltas[0]);
        for (int i = 0; i < tasks; i++)
        {
            var (ui, si, vhi) = linalg.svd(deltas[i], fullMatrices: false);
            u.narrow(1, i * k, k).copy_(ui.narrow(1, 0, k));
            s.narrow(0, i * k, k).copy_(si.narrow(0, 0, k));
            vh.narrow(0, i * k, k).copy_(vhi.narrow(0, 0, k));
        }
        var (pu, _, qu) = linalg.svd(u, fullMatrices: false);
        var (pv, _, qv) = linalg.svd(vh, fullMatrices: false);
        return pu.matmul(qu).matmul(diag(s)).matmul(pv.matmul(qv));
    }
}

/// <summary>
/// Iso-C (Marczak et al. 2025): Δ_TA = Σ δᵢ = U S Vᵀ; every singular value is replaced by their mean σ̄;
/// Δ = σ̄ · U Vᵀ.
/// </summary>
public sealed class IsoC : SvdMergeMethod
{
    public override string Name => "iso_c";
    public override string Description => "Iso-C: task arithmetic sum with its singular values flattened to their mean (Marczak et al. 2025)";

    protected override Tensor MergeMatrix(IReadOnlyList<Tensor> deltas)
    {
        var sum = stack(deltas, 0).sum(dim: 0);
        var (u, s, vh) = linalg.svd(sum, fullMatrices: false);
        return u.matmul(vh) * s.mean();
    }
}
