using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Merging.Parts;

/// <summary>TIES sign election over stacked deltas [models, ...].</summary>
public static class SignConsensus
{
    /// <summary>
    /// Elected sign: +1 where the sum (<c>sum</c>) or the sum of signs (<c>count</c>) over models is ≥ 0, else −1.
    /// Returns the agreement mask [models, ...]: sign(xᵢ) == elected; a zero entry never agrees.
    /// </summary>
    public static Tensor AgreementMask(Tensor stacked, ConsensusRule rule)
    {
        var sign = stacked.sign();
        var score = rule == ConsensusRule.Count ? sign.sum(dim: 0) : stacked.sum(dim: 0);
        var elected = where(score >= 0, ones_like(score), -ones_like(score));
        return (sign == elected.unsqueeze(0)).to(stacked.dtype);
    }
}
