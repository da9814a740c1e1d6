using Amalgam.Experts;
using static TorchSharp.torch;

namespace Amalgam.Selection;

/// <summary>Feature vectors, one row per expert, for clustering experts (<see cref="KMeans"/>).</summary>
public static class ExpertFeatures
{
    /// <summary>The default fraction of each module's ΔW entries kept (by magnitude) before the SVD: MBC's 80 % sparsity.</summary>
    public const double DefaultKeepFraction = 0.2;
    public const int DefaultDimensions = 64;

    /// <summary>
    /// Model-based clustering (MBC) features: each expert's flattened update xₑ = concat over modules of sₑ·Bₑ·Aₑ (every
    /// module any expert adapts, in ordinal name order; a module an expert lacks contributes zeros), sketched by keeping
    /// the top <paramref name="keepFraction"/> of its entries by magnitude <b>within each module</b>, then reduced by an
    /// uncentred SVD to <paramref name="dimensions"/> columns: features = U·S of X = [x₁; …; x_K] (the PCA-free
    /// TruncatedSVD of the MBC recipe). Returns [K][min(dimensions, K)].
    /// <para>Streams module by module: only one module's K dense updates are alive at once; the K×K Gram matrix
    /// G = X·Xᵀ is accumulated in float64 and U·S = U·√Λ comes from its eigendecomposition. Columns are ordered by
    /// decreasing singular value and signed so that each column's largest-magnitude entry is positive.</para>
    /// </summary>
    public static double[][] Mbc(IReadOnlyList<LoraAdapter> experts, double keepFraction = DefaultKeepFraction, int dimensions = DefaultDimensions)
    {
        ArgumentNullException.ThrowIfNull(experts);
        if (experts.Count == 0) throw new ArgumentException("MBC features: experts is empty", nameof(experts));
        if (!(keepFraction > 0 && keepFraction <= 1)) throw new ArgumentException($"MBC features: keepFraction = {keepFraction}, must be in (0, 1]", nameof(keepFraction));
        if (dimensions < 1) throw new ArgumentException($"MBC features: dimensions = {dimensions}, must be at least 1", nameof(dimensions));
        foreach (var e in experts) e.RequirePlainLora("for MBC features (they read ΔW = s·B·A)");
        int k = experts.Count;
        var modules = experts.SelectMany(e => e.Deltas.Keys).Distinct().OrderBy(m => m, StringComparer.Ordinal).ToList();
        using var gram = zeros(new long[] { k, k }, ScalarType.Float64);
        foreach (var module in modules)
        {
            using var scope = NewDisposeScope();
            long[]? shape = null;
            var rows = new Tensor?[k];
            for (int e = 0; e < k; e++)
            {
                if (!experts[e].Deltas.TryGetValue(module, out var delta)) continue;
                var dense = delta.Dense(ScalarType.Float64);
                if (shape is not null && !dense.shape.SequenceEqual(shape))
                    throw new ArgumentException($"MBC features: module '{module}' is [{string.Join(", ", dense.shape)}] in expert '{experts[e].Name}' but [{string.Join(", ", shape)}] in another expert");
                shape = dense.shape;
                rows[e] = KeepTop(dense.flatten(), keepFraction);
            }
            long size = shape!.Aggregate(1L, (a, b) => a * b);
            var x = stack(rows.Select(r => r ?? zeros(size, ScalarType.Float64)).ToArray());
            gram.add_(x.matmul(x.T));
        }
        return FromGram(gram, dimensions);
    }

    /// <summary>
    /// Features U·√Λ (columns by decreasing eigenvalue, each signed so its largest-magnitude entry is positive) from a
    /// K×K Gram matrix G = X·Xᵀ: the same as the left singular vectors of X times its singular values.
    /// </summary>
    public static double[][] FromGram(Tensor gram, int dimensions = DefaultDimensions)
    {
        if (gram.dim() != 2 || gram.shape[0] != gram.shape[1]) throw new ArgumentException($"Gram matrix must be square, got [{string.Join(", ", gram.shape)}]", nameof(gram));
        using var scope = NewDisposeScope();
        int k = (int)gram.shape[0], d = Math.Min(dimensions, k);
        var g = gram.to(ScalarType.Float64).cpu();
        var (values, vectors) = linalg.eigh((g + g.T) / 2);               // ascending eigenvalues
        var top = arange(k - 1, k - 1 - d, -1, dtype: ScalarType.Int64);
        var u = vectors.index_select(1, top);
        var s = values.index_select(0, top).clamp_min(0).sqrt();           // tiny negative eigenvalues are rounding
        var features = u * s.unsqueeze(0);
        var sign = features.gather(0, features.abs().argmax(0).unsqueeze(0)).sign();
        features = features * where(sign == 0, ones_like(sign), sign);
        return FromRows(features);
    }

    /// <summary>A [K, d] tensor (e.g. mean hidden states per expert: "data centroids") as K rows of doubles.</summary>
    public static double[][] FromRows(Tensor rows)
    {
        if (rows.dim() != 2) throw new ArgumentException($"feature rows must be [K, d], got [{string.Join(", ", rows.shape)}]", nameof(rows));
        using var scope = NewDisposeScope();
        int k = (int)rows.shape[0], d = (int)rows.shape[1];
        var flat = rows.detach().to(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
        if (flat.Any(v => !double.IsFinite(v))) throw new ArgumentException("feature rows have a value that is not finite", nameof(rows));
        return Enumerable.Range(0, k).Select(i => flat.AsSpan(i * d, d).ToArray()).ToArray();
    }

    /// <summary>v with all but its ⌈fraction·n⌉ largest-magnitude entries set to zero.</summary>
    internal static Tensor KeepTop(Tensor v, double fraction)
    {
        long n = v.shape[0];
        long keep = Math.Min(n, (long)Math.Ceiling(fraction * n - 1e-9));
        if (keep >= n) return v;
        var index = v.abs().topk((int)keep).indexes;
        return zeros_like(v).index_copy_(0, index, v.index_select(0, index));
    }
}
