using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// SCE, Select–Calculate–Erase (FuseChat 2.0, Wan et al. 2024), as mergekit computes it, per tensor:
/// δᵢ = θᵢ − θ₀; <b>select</b>: when <c>select_topk</c> = τ &lt; 1, keep in every δᵢ only the k = int(τ·nnz(v))
/// entries of largest variance v = Var₀(δ) across models (population variance; ties: lower flat index);
/// <b>calculate</b>: wᵢ = mean(δ̃ᵢ²) / Σⱼ mean(δ̃ⱼ²) (1/N when that sum is below 1e-6);
/// <b>erase</b>: TIES sign election on wᵢδ̃ᵢ (sign of the sum, zero never agrees) and the disjoint weighted mean
/// Σ wᵢaᵢδ̃ᵢ / Σ wᵢaᵢ (divisor 1 where 0); result θ₀ + λ·mixed.
/// </summary>
public sealed class Sce : IMergeMethod
{
    public string Name => "sce";
    public string Description => "SCE: select high-variance entries, weight models by their update energy, erase sign conflicts (Wan et al. 2024)";
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("select_topk", ParameterScope.Global, ParameterKind.Number, 1.0, "fraction of entries kept, by variance across the models (1 = all)", Range: new NumberRange(0, 1, MinOpen: true)),
        new("lambda", ParameterScope.Global, ParameterKind.Number, 1.0, "scales the mixed delta"),
        new("normalize", ParameterScope.Global, ParameterKind.Bool, true, "divide by Σ wᵢaᵢ"),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        var b = inputs.Base ?? throw new InvalidDataException($"tensor '{inputs.Name}': sce needs a base model");
        int n = inputs.Models.Count;
        if (n == 0) return b.clone().MoveToOuterDisposeScope();
        var deltas = stack(inputs.Models.Select(m => m.to(b.dtype) - b).ToList(), 0);
        double topk = ParameterValues.Number(inputs.Global, "select_topk") ?? 1.0;
        if (topk < 1)
        {
            var mask = topk <= 0 ? zeros_like(b) : VarianceMask(deltas, topk);
            deltas = deltas * mask.unsqueeze(0);
        }
        var energy = (deltas * deltas).reshape(n, -1).mean([1L]);
        double total = energy.sum().ToDouble();
        var w = total < 1e-6 ? full(n, 1.0 / n, dtype: b.dtype) : energy / total;
        var shape = new long[deltas.dim()];
        Array.Fill(shape, 1L);
        shape[0] = n;
        w = w.reshape(shape);
        var weighted = deltas * w;
        var agree = SignConsensus.AgreementMask(weighted, ConsensusRule.Sum);
        var mixed = (weighted * agree).sum(dim: 0);
        if (ParameterValues.Bool(inputs.Global, "normalize") ?? true)
        {
            var divisor = (w * agree).sum(dim: 0);
            divisor = where(divisor == 0, ones_like(divisor), divisor);
            mixed = mixed / divisor;
        }
        double lambda = ParameterValues.Number(inputs.Global, "lambda") ?? 1.0;
        return (b + mixed * lambda).MoveToOuterDisposeScope();
    }

    /// <summary>1 at the int(τ·nnz) entries of largest variance across models (larger first, then lower flat index).</summary>
    static Tensor VarianceMask(Tensor deltas, double topk)
    {
        var variance = deltas.var(0, unbiased: false);
        long nonzero = variance.count_nonzero().ToInt64();
        long k = (long)(nonzero * topk);
        var mask = zeros(variance.numel(), dtype: deltas.dtype);
        if (k > 0)
        {
            var flat = variance.abs().reshape(-1);
            var order = flat.sort(dim: 0, descending: true, stable: true).Indices;
            mask.index_fill_(0, order.narrow(0, 0, k), 1.0);
        }
        return mask.reshape(variance.shape);
    }
}
