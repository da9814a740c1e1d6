using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// The LoRA factors of K experts for one linear layer, concatenated along the rank: A [R, in], B [out, R] with
/// R = Σ rₖ, and for every rank row the expert it belongs to. It computes the per-row mixture
/// <c>Σₖ wₖ·sₖ·Bₖ·(Aₖ·x)</c> in factored form, never materialising a dense ΔW:
/// <list type="bullet">
/// <item><see cref="Dense"/>: one [.., R] product for all experts (cost ≈ K LoRAs, any weights);</item>
/// <item><see cref="Sparse"/>: per expert, only the rows that give it a non-zero weight (a top-1 row costs ≈ one LoRA).</item>
/// </list>
/// Weights are per example <c>[batch, K]</c> or per token <c>[batch, positions, K]</c>; x is <c>[batch, positions, in]</c>.
/// </summary>
public sealed class StackedFactors : IDisposable
{
    private readonly Tensor a, b, expertOfRow;
    private readonly (int Expert, long Offset, long Rank, double Scale)[] blocks;
    /// <param name="experts">one entry per expert; null where the expert does not adapt this layer</param>
    /// <param name="inFeatures">the layer's input size</param>
    /// <param name="outFeatures">the layer's output size</param>
    public StackedFactors(IReadOnlyList<LowRankDelta?> experts, long inFeatures, long outFeatures)
    {
        Experts = experts.Count;
        var present = experts.Select((d, k) => (d, k)).Where(p => p.d is not null).ToList();
        long offset = 0;
        blocks = present.Select(p =>
        {
            var block = (p.k, offset, p.d!.Rank, p.d.Scale);
            offset += p.d.Rank;
            return block;
        }).ToArray();
        using var scope = NewDisposeScope();
        // sₖ is folded into Aₖ once here, so a forward scales by the weights only.
        a = present.Count == 0 ? zeros(new long[] { 0, inFeatures }) : cat(present.Select(p => p.d!.A.to(ScalarType.Float32) * p.d.Scale).ToArray(), 0);
        b = present.Count == 0 ? zeros(new long[] { outFeatures, 0 }) : cat(present.Select(p => p.d!.B.to(ScalarType.Float32)).ToArray(), 1);
        expertOfRow = tensor(blocks.SelectMany(x => Enumerable.Repeat((long)x.Expert, (int)x.Rank)).ToArray(), ScalarType.Int64);
        foreach (var t in new[] { a, b, expertOfRow }) t.MoveToOuterDisposeScope();
        PrefersSparse = TotalRank * (inFeatures + outFeatures) >= SparseThreshold;
    }

    public int Experts { get; }
    public long TotalRank => a.shape[0];

    /// <summary>
    /// Whether the per-expert (sparse) path pays off: its gathers and scatters cost a fixed overhead per expert, so
    /// it only wins when an expert's product is large; below that one concatenated product is faster (measured in
    /// bench/Amalgam.Bench.Mixing on the bundled model, where every layer is below the threshold).
    /// </summary>
    public bool PrefersSparse { get; }

    public const long SparseThreshold = 1L << 22;

    static Tensor PerToken(Tensor weights) => weights.dim() == 2 ? weights.unsqueeze(1) : weights;

    void Check(Tensor x, Tensor weights)
    {
        if (x.dim() != 3) throw new ArgumentException($"x must be [batch, positions, in], got [{string.Join(", ", x.shape)}]");
        if (weights.shape[^1] != Experts || weights.shape[0] != x.shape[0] || (weights.dim() == 3 && weights.shape[1] != x.shape[1]) || weights.dim() is not (2 or 3))
            throw new ArgumentException($"weights must be [batch, {Experts}] or [batch, positions, {Experts}], got [{string.Join(", ", weights.shape)}]");
    }

    /// <summary>All experts at once: h = x·Aᵀ, each rank row scaled by its expert's weight × scale, then h·Bᵀ.</summary>
    public Tensor Dense(Tensor x, Tensor weights, MixingCache? cache = null)
    {
        Check(x, weights);
        using var scope = NewDisposeScope();
        var x32 = x.dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32);
        var h = nn.functional.linear(x32, a);                                                      // [b, t, R]
        var y = nn.functional.linear(h * Gather(weights, cache), b);
        return (y.dtype == x.dtype ? y : y.to(x.dtype)).MoveToOuterDisposeScope();
    }

    // Each rank row scaled by its expert's weight: [batch, 1 or positions, R]. Fixed weights are gathered once per
    // policy (a generation), not per step.
    Tensor Gather(Tensor weights, MixingCache? cache)
    {
        Tensor Make() => PerToken(weights.dtype == ScalarType.Float32 ? weights : weights.to(ScalarType.Float32)).index_select(-1, expertOfRow);
        return cache is null ? Make() : cache.Gathered(this, Make);
    }

    /// <summary>
    /// Per-example weights [batch, K] compacted per row: row i keeps only the rank rows of the experts it weighs
    /// (padded with zero rows to the widest row's rank r′), as A′ᵀ [batch, in, r′] and B′ᵀ [batch, r′, out] with
    /// the weight folded into B′. The mixture is then two batched products, x·A′ᵀ·B′ᵀ: a top-1 row costs one
    /// LoRA, and, unlike the sparse path, there is no per-expert work. Null when the weights are per token or
    /// take part in autograd (dropping zero weights would drop their gradients; such policies have no cache), or when a row keeps over a
    /// quarter of the rank or the per-row copies would be large (see <see cref="PerRowFactors"/>).
    /// </summary>
    // Without a cache (weights that may change per call) the factors are built for this call alone.
    PerRowFactors? PerRow(Tensor weights, long batch, MixingCache? cache, out PerRowFactors? transient)
    {
        transient = null;
        if (weights.dim() != 2 || weights.requires_grad) return null;
        if (cache is not null) return cache.Compact(this, () => PerRowFactors.Build(weights, blocks, a, b, batch));
        return transient = PerRowFactors.Build(weights, blocks, a, b, batch);
    }

    /// <summary>The mixture through per-row compacted factors (per-example weights only); for tests and callers that want this path.</summary>
    public Tensor Compact(Tensor x, Tensor weights)
    {
        Check(x, weights);
        if (weights.dim() != 2) throw new ArgumentException("the compact path needs per-example weights [batch, K]");
        using var scope = NewDisposeScope();
        using var f = PerRowFactors.Build(weights, blocks, a, b, x.shape[0], force: true)!;
        var y = f.Apply(x.to(ScalarType.Float32));
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// y + the mixture for x, through the cheapest exact path: per-expert (sparse) for large layers with mostly
    /// zero weights, per-row compacted factors for fixed per-example weights (the base
    /// output and the second product fused into one batched multiply-add), else the dense concatenated product.
    /// </summary>
    public Tensor AddTo(Tensor y, Tensor x, Tensor weights, MixingCache? cache = null)
    {
        Check(x, weights);
        using var scope = NewDisposeScope();
        Tensor result;
        if (PrefersSparse && weights.count_nonzero().item<long>() * 2 < weights.numel())
            result = Scalars.Plus(y, Sparse(x, weights).to(y.dtype));
        else if (PerRow(weights, x.shape[0], cache, out var transient) is { } f)
        {
            result = f.AddTo(y, x);
            transient?.Dispose();
        }
        else
            result = Scalars.Plus(y, Dense(x, weights, cache).to(y.dtype));
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Per expert, only the (example or token) rows with a non-zero weight for it.</summary>
    public Tensor Sparse(Tensor x, Tensor weights)
    {
        Check(x, weights);
        using var scope = NewDisposeScope();
        long batch = x.shape[0], positions = x.shape[1];
        var flatX = x.to(ScalarType.Float32).reshape(batch * positions, -1);
        var flatW = PerToken(weights).to(ScalarType.Float32).expand(batch, positions, Experts).reshape(batch * positions, Experts);
        var y = zeros(new long[] { batch * positions, b.shape[0] });
        foreach (var (expert, offset, rank, scale) in blocks)
        {
            var column = flatW.select(1, expert);
            var rows = column.nonzero().squeeze(1);
            if (rows.shape[0] == 0) continue;
            var h = nn.functional.linear(flatX.index_select(0, rows), a.narrow(0, offset, rank));
            var part = nn.functional.linear(h, b.narrow(1, offset, rank)) * column.index_select(0, rows).unsqueeze(1);
            y.index_add_(0, rows, part, 1);
        }
        return y.reshape(batch, positions, -1).to(x.dtype).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        a.Dispose();
        b.Dispose();
        expertOfRow.Dispose();
    }
}
