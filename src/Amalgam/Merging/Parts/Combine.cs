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
    /// <paramref name="weightedDeltas"/> is masked in place (it is the caller's scratch stack), so that no second
    /// model-sized stack is allocated: peak memory stays a few tensors above the inputs.
    /// </summary>
    public static Tensor Mix(Tensor weightedDeltas, Tensor weights, Tensor? mask, DivisorRule divisor, bool normalize)
    {
        var mixed = (mask is null ? weightedDeltas : weightedDeltas.mul_(mask)).sum(dim: 0);
        if (!normalize || divisor == DivisorRule.None) return mixed;
        Tensor d;
        if (mask is null)
        {
            // Without a mask every entry has the same divisor: a scalar, not a model-sized stack of weights.
            double sum = divisor == DivisorRule.Count ? weightedDeltas.shape[0] : weights.sum().to(ScalarType.Float64).item<double>();
            if (divisor == DivisorRule.Weights && Math.Abs(sum) < 1e-8) sum = 1;
            return mixed / sum;
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
