using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Merging.Parts;

/// <summary>
/// Keep-masks for task vectors (0/1 in the delta's dtype and shape). Ranking is by magnitude with one total order
/// everywhere: a larger |x| ranks higher, and among equal magnitudes the lower flat index ranks higher.
/// Counts follow mergekit and PEFT exactly: <c>int(density × numel)</c>.
/// </summary>
public static class Sparsifiers
{
    /// <summary><c>int(d·n)</c> as Python computes it (double product, truncated).</summary>
    public static long KeepCount(double density, long numel) => (long)Math.Floor(density * numel);

    /// <summary>Flat indices from highest to lowest rank (stable descending sort of |x|).</summary>
    public static Tensor RankOrderDescending(Tensor delta) =>
        delta.abs().reshape(-1).sort(dim: 0, descending: true, stable: true).Indices;

    static Tensor MaskFromIndices(Tensor delta, Tensor indices)
    {
        var flat = zeros(delta.numel(), dtype: delta.dtype, device: delta.device);
        if (indices.numel() > 0) flat.index_fill_(0, indices, 1.0);
        return flat.reshape(delta.shape);
    }

    /// <summary>Magnitude top-k: keeps exactly <c>int(d·numel)</c> entries (all when d ≥ 1).</summary>
    public static Tensor Magnitude(Tensor delta, double density)
    {
        if (density >= 1) return ones_like(delta);
        long k = Math.Max(0, KeepCount(density, delta.numel()));
        return MaskFromIndices(delta, RankOrderDescending(delta).narrow(0, 0, k));
    }

    /// <summary>
    /// Model Breadcrumbs: drops the top <c>int(γ·n)</c> (outliers) and the smallest entries so that exactly
    /// <c>int(d·n)</c> remain; when the outliers and the target overlap, fewer outliers are dropped. Unlike mergekit,
    /// a top count of 0 keeps the top entries instead of zeroing the tensor.
    /// </summary>
    public static Tensor Breadcrumbs(Tensor delta, double density, double gamma)
    {
        if (density >= 1) return ones_like(delta);
        long n = delta.numel();
        long target = Math.Max(0, KeepCount(density, n));
        long top = Math.Max(0, (long)Math.Floor(gamma * n));
        long bottom = n - target - top;
        if (bottom < 0) { top += bottom; }
        return MaskFromIndices(delta, RankOrderDescending(delta).narrow(0, top, target));
    }

    /// <summary>DARE: Bernoulli(d) keep-mask drawn from <paramref name="generator"/>.</summary>
    public static Tensor Bernoulli(Tensor delta, double density, Generator? generator)
    {
        if (density >= 1) return ones_like(delta);
        if (density <= 0) return zeros_like(delta);
        return torch.bernoulli(full_like(delta, density), generator);
    }

    /// <summary>
    /// DELLA keep probabilities: per row (a 1-D tensor is one row), rank r = 1..n by ascending magnitude,
    /// <c>p = d − ε + 2ε·(r − 1)/(n − 1)</c>. A row of one entry gets p = d. Requires 0 &lt; d − ε and d + ε &lt; 1.
    /// </summary>
    public static Tensor DellaProbabilities(Tensor delta, double density, double epsilon)
    {
        if (density >= 1) return ones_like(delta);
        if (density <= 0) return zeros_like(delta);
        if (density + epsilon >= 1 || density - epsilon <= 0)
            throw new InvalidDataException($"parameter 'epsilon': density ± epsilon must lie in (0, 1), got density {density}, epsilon {epsilon}");
        var rows = delta.dim() < 2 ? delta.reshape(1, -1) : delta.reshape(delta.shape[0], -1);
        long n = rows.shape[1];
        if (n < 2) return full_like(delta, density);
        // descending stable order, reversed: position 0 = lowest rank
        var desc = rows.abs().sort(dim: 1, descending: true, stable: true).Indices;
        var ascPos = arange(n - 1, -1, -1, dtype: delta.dtype, device: delta.device).expand(rows.shape[0], n);
        var rankNorm = zeros_like(rows).scatter_(1, desc, ascPos) / (double)(n - 1);
        return ((density - epsilon) + rankNorm * (2 * epsilon)).reshape(delta.shape);
    }

    /// <summary>DELLA keep-mask: Bernoulli of the rank-based probabilities.</summary>
    public static Tensor Della(Tensor probabilities, Generator? generator) => torch.bernoulli(probabilities, generator);
}
