using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Merging.Parts;

/// <summary>Applying a keep-mask and rescaling what survives.</summary>
public static class Rescale
{
    /// <summary>mergekit's tolerance: the L1 rescale is skipped when either norm is below it.</summary>
    public const double L1Epsilon = 1e-7;

    /// <summary>
    /// <c>δ·m</c>, then: <c>l1</c> multiplies by ‖δ‖₁ / ‖δ·m‖₁ (skipped when either is &lt; 1e-7); <c>inverse_density</c>
    /// divides by the keep probability (<paramref name="keepProbability"/>: the density, or DELLA's per-entry p);
    /// <c>none</c> leaves it.
    /// </summary>
    public static Tensor Apply(Tensor delta, Tensor mask, RescaleRule rule, Tensor keepProbability)
    {
        var masked = delta * mask;
        switch (rule)
        {
            case RescaleRule.L1:
                double before = delta.abs().sum().ToDouble();
                double after = masked.abs().sum().ToDouble();
                if (before < L1Epsilon || after < L1Epsilon) return masked;
                return masked * (before / after);
            case RescaleRule.InverseDensity:
                return where(mask != 0, masked / keepProbability, zeros_like(masked));
            default:
                return masked;
        }
    }
}
