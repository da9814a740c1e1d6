using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// One layer's expert factors gathered per example for fixed per-example weights: row i keeps only the rank rows
/// of the experts it weighs, padded with zero rows to the widest row's rank r′, as A′ᵀ [batch, in, r′] and
/// B′ᵀ [batch, r′, out] with each expert's weight folded into B′ (its scale is already in A). The mixture is
/// then x·A′ᵀ·B′ᵀ, two batched products whatever the experts, and y + mixture is one batched multiply-add.
/// Built once per weights tensor (per generation), not per decoding step.
/// </summary>
internal sealed class PerRowFactors : IDisposable
{
    /// <summary>Per-row copies above this many elements are not worth their memory (the dense path is used).</summary>
    public const long MaxElements = 1L << 22;

    /// <summary>
    /// Every row reads its own factor copies, so the batch reads batch·r′ rank rows where the dense path reads R:
    /// on the bundled suite (R = 96, 32 rows) r′ = 8 and 16 beat the dense path, r′ = 96 is 2× slower than it.
    /// </summary>
    public const long MinRankSaving = 4;

    private readonly Tensor? aT, bT;
    private readonly long outFeatures;

    private PerRowFactors(Tensor? aT, Tensor? bT, long outFeatures)
    {
        this.aT = aT;
        this.bT = bT;
        this.outFeatures = outFeatures;
    }

    /// <summary>No row weighs any expert present on this layer: the mixture is zero.</summary>
    public bool IsEmpty => aT is null;

    /// <summary>
    /// Null (use another path) unless the widest row keeps at most 1/<see cref="MinRankSaving"/> of the total rank
    /// and the per-row copies stay small; with <paramref name="force"/>, always built.
    /// </summary>
    public static PerRowFactors? Build(Tensor weights, (int Expert, long Offset, long Rank, double Scale)[] blocks,
        Tensor a, Tensor b, long batch, bool force = false)
    {
        long totalRank = a.shape[0], inFeatures = a.shape[1], outFeatures = b.shape[0];
        int k = (int)weights.shape[1];
        var w = weights.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var rows = new List<(long Offset, long Rank, float Weight)>[batch];
        long width = 0;
        for (int r = 0; r < batch; r++)
        {
            rows[r] = blocks.Where(x => w[r * k + x.Expert] != 0).Select(x => (x.Offset, x.Rank, w[r * k + x.Expert])).ToList();
            width = Math.Max(width, rows[r].Sum(x => x.Rank));
        }
        if (width == 0) return new PerRowFactors(null, null, outFeatures);
        if (!force && (width * MinRankSaving > totalRank || batch * width * (inFeatures + outFeatures) > MaxElements)) return null;

        var index = new long[batch * width];
        var weight = new float[batch * width];   // 0 on padding rows, which also zeroes their A′ rows
        for (int r = 0; r < batch; r++)
        {
            long j = r * width;
            foreach (var (offset, rank, rowWeight) in rows[r])
                for (long i = 0; i < rank; i++, j++) { index[j] = offset + i; weight[j] = rowWeight; }
        }
        using var scope = NewDisposeScope();
        var idx = tensor(index, ScalarType.Int64, a.device);
        var wt = tensor(weight, [batch, width, 1], ScalarType.Float32, a.device);
        var used = wt.ne(0).to(ScalarType.Float32);
        var aRows = (a.index_select(0, idx).view(batch, width, inFeatures) * used).transpose(1, 2).contiguous();
        var bRows = (b.t().index_select(0, idx).view(batch, width, outFeatures) * wt).contiguous();
        return new PerRowFactors(aRows.DetachFromDisposeScope(), bRows.DetachFromDisposeScope(), outFeatures);
    }

    /// <summary>x·A′ᵀ·B′ᵀ for float32 x [batch, positions, in].</summary>
    public Tensor Apply(Tensor x) => IsEmpty ? zeros(new long[] { x.shape[0], x.shape[1], outFeatures }) : bmm(bmm(x, aT!), bT!);

    /// <summary>y + x·A′ᵀ·B′ᵀ; one fused batched multiply-add when x and y are float32.</summary>
    public Tensor AddTo(Tensor y, Tensor x)
    {
        if (IsEmpty) return y.alias();
        // TorchSharp 0.107 binds baddbmm's operands in the order (batch1, batch2, input): this is y + h·B′ᵀ
        // (pinned by the tests against the dense reference).
        if (x.dtype == ScalarType.Float32 && y.dtype == ScalarType.Float32) return bmm(x, aT!).baddbmm(bT!, y);
        using var scope = NewDisposeScope();
        return Scalars.Plus(y, bmm(bmm(x.to(ScalarType.Float32), aT!), bT!).to(y.dtype)).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        aT?.Dispose();
        bT?.Dispose();
    }
}
