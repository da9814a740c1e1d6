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

    /// <summary>
    /// The 0/1 mask (bool, flat) of the <paramref name="k"/> highest-ranked entries of a flat magnitude tensor, in
    /// linear time instead of a full sort: the k-th largest magnitude t by selection (<c>kthvalue</c>), every entry
    /// above t, and of the entries equal to t the first ones in flat order until k are kept; which is exactly the
    /// first k of the stable descending sort. NaN magnitudes (ranked first by the sort) take the sort path.
    /// </summary>
    public static Tensor TopRanked(Tensor magnitude, long k)
    {
        long n = magnitude.numel();
        if (k <= 0) return zeros(n, dtype: ScalarType.Bool, device: magnitude.device);
        if (k >= n) return ones(n, dtype: ScalarType.Bool, device: magnitude.device);
        using var scope = NewDisposeScope();
        var flat = magnitude.reshape(-1);
        if (isnan(flat).any().item<bool>())
        {
            var order = flat.sort(dim: 0, descending: true, stable: true).Indices.narrow(0, 0, k);
            return zeros(n, dtype: ScalarType.Bool, device: flat.device).index_fill_(0, order, true).MoveToOuterDisposeScope();
        }
        var t = KthLargest(flat, k);
        var keep = flat > t;
        long tiesNeeded = k - keep.sum().item<long>();
        var equal = flat == t;
        long ties = equal.sum().item<long>();
        if (tiesNeeded == ties) return keep.logical_or_(equal).MoveToOuterDisposeScope();
        // Some entries equal to t stay out: keep the lowest flat indices among them.
        var rank = equal.cumsum(0, n <= int.MaxValue ? ScalarType.Int32 : ScalarType.Int64);
        return keep.logical_or_(equal.logical_and_(rank.le_(tiesNeeded))).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The k-th largest value of a flat NaN-free tensor (a 0-d tensor), exactly. A strided sample brackets it between
    /// two of its own values, two counting passes check the bracket, and <c>kthvalue</c> then runs only on the few
    /// entries inside it; a missed bracket (an adversarial layout) falls back to <c>kthvalue</c> on everything.
    /// This keeps the temporaries to bool masks: <c>kthvalue</c> itself copies its input and allocates int64 indices
    /// (12 bytes per float32 entry).
    /// </summary>
    internal static Tensor KthLargest(Tensor flat, long k)
    {
        long n = flat.numel();
        const long SampleSize = 1 << 16;
        using var scope = NewDisposeScope();
        if (n > 16 * SampleSize)
        {
            long step = n / SampleSize;
            var sample = flat.slice(0, 0, n, step).contiguous();
            long m = sample.numel();
            // expected sample rank of the k-th largest, widened by 6 standard deviations of a binomial count
            double p = (double)k / n;
            double margin = 6 * Math.Sqrt(m * p * (1 - p)) + 8;
            long hiRank = (long)Math.Floor(p * m - margin);   // sample rank (from the top) above the target
            long loRank = (long)Math.Ceiling(p * m + margin); // below it
            Tensor? hi = hiRank >= 1 ? sample.kthvalue(m - hiRank + 1, 0).values : null;
            Tensor? lo = loRank <= m ? sample.kthvalue(m - loRank + 1, 0).values : null;
            long above = hi is null ? 0 : flat.gt(hi).sum().item<long>();
            long atLeast = lo is null ? n : flat.ge(lo).sum().item<long>();
            if (above < k && k <= atLeast)
            {
                var inside = lo is null && hi is null ? flat
                    : lo is null ? flat.masked_select(flat.le(hi!))
                    : hi is null ? flat.masked_select(flat.ge(lo))
                    : flat.masked_select(flat.ge(lo).logical_and_(flat.le(hi)));
                long r = k - above; // rank from the top inside the bracket
                return inside.kthvalue(inside.numel() - r + 1, 0).values.MoveToOuterDisposeScope();
            }
        }
        return flat.kthvalue(n - k + 1, 0).values.MoveToOuterDisposeScope(); // the (n−k+1)-th smallest
    }

    /// <summary>Magnitude top-k: keeps exactly <c>int(d·numel)</c> entries (all when d ≥ 1).</summary>
    public static Tensor Magnitude(Tensor delta, double density)
    {
        if (density >= 1) return ones_like(delta);
        using var magnitude = delta.abs();
        using var keep = MagnitudeKeep(magnitude, density);
        using var mask = keep.to(delta.dtype);
        return mask.reshape(delta.shape);
    }

    /// <summary><see cref="Magnitude"/>'s keep-mask (bool, flat) from the magnitudes |δ| (density &lt; 1).</summary>
    public static Tensor MagnitudeKeep(Tensor magnitude, double density) =>
        TopRanked(magnitude, Math.Max(0, KeepCount(density, magnitude.numel())));

    /// <summary>
    /// Model Breadcrumbs: drops the top <c>int(γ·n)</c> (outliers) and the smallest entries so that exactly
    /// <c>int(d·n)</c> remain; when the outliers and the target overlap, fewer outliers are dropped. Unlike mergekit,
    /// a top count of 0 keeps the top entries instead of zeroing the tensor.
    /// </summary>
    public static Tensor Breadcrumbs(Tensor delta, double density, double gamma)
    {
        if (density >= 1) return ones_like(delta);
        using var magnitude = delta.abs();
        using var window = BreadcrumbsKeep(magnitude, density, gamma);
        using var mask = window.to(delta.dtype);
        return mask.reshape(delta.shape);
    }

    /// <summary><see cref="Breadcrumbs"/>' keep-mask (bool, flat) from the magnitudes |δ| (density &lt; 1).</summary>
    public static Tensor BreadcrumbsKeep(Tensor magnitude, double density, double gamma)
    {
        long n = magnitude.numel();
        long target = Math.Max(0, KeepCount(density, n));
        long top = Math.Max(0, (long)Math.Floor(gamma * n));
        long bottom = n - target - top;
        if (bottom < 0) { top += bottom; }
        // ranks [top, top + target): the top (top + target) without the top (top)
        using var upTo = TopRanked(magnitude, top + target);
        using var outliers = TopRanked(magnitude, top);
        return upTo.logical_and(outliers.logical_not_());
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
