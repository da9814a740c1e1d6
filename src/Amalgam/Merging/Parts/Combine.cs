using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Merging.Parts;

/// <summary>Combining the (sparsified, weighted, sign-filtered) deltas, and the divisor rules.</summary>
public static class Combine
{
    /// <summary>
    /// <c>Σᵢ wᵢ mᵢ δ̃ᵢ / D</c>. With a mask (sign consensus): D = Σ wᵢmᵢ (0 → 1) for <c>weights</c>, max(Σ mᵢ, 1) for
    /// <c>count</c>. Without: D = Σ wᵢ (|D| &lt; 1e-8 → 1) for <c>weights</c>, the number of models for <c>count</c>.
    /// <c>none</c> (or <paramref name="normalize"/> false): D = 1.
    /// </summary>
    public static Tensor Mix(Tensor weightedDeltas, Tensor weights, Tensor? mask, DivisorRule divisor, bool normalize)
    {
        var mixed = (mask is null ? weightedDeltas : weightedDeltas * mask).sum(dim: 0);
        if (!normalize || divisor == DivisorRule.None) return mixed;
        Tensor d;
        if (mask is null)
        {
            d = divisor == DivisorRule.Count
                ? full_like(mixed, (double)weightedDeltas.shape[0])
                : (weights * ones_like(weightedDeltas)).sum(dim: 0);
            if (divisor == DivisorRule.Weights) d = where(d.abs() < 1e-8, ones_like(d), d);
        }
        else if (divisor == DivisorRule.Count)
        {
            d = mask.sum(dim: 0).clamp_min(1.0);
        }
        else
        {
            d = (weights * mask).sum(dim: 0);
            d = where(d == 0, ones_like(d), d);
        }
        return mixed / d;
    }
}
