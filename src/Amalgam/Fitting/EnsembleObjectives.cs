using Amalgam.Ensembling;
using static TorchSharp.torch;

namespace Amalgam.Fitting;

/// <summary>
/// Losses of an output ensemble as differentiable functions of its weights w [K] (for <see cref="SimplexFit"/>), over
/// expert outputs computed once beforehand (the experts do not change while the weights are fitted).
/// </summary>
public static class EnsembleObjectives
{
    /// <summary>
    /// Supervised, probability averaging, from per-token target log-probabilities only: the mean over real target
    /// tokens (mask = 1) of −log Σₖ wₖ·pₖ(target). <paramref name="targetLogProbs"/> is [N, T, K] (log pₖ of the target
    /// token at each position), <paramref name="mask"/> [N, T], <paramref name="weights"/> [K]. Stable where every
    /// expert gives the target a tiny probability (the max log-probability is factored out).
    /// </summary>
    public static Tensor CrossEntropy(Tensor targetLogProbs, Tensor mask, Tensor weights)
    {
        CheckWeights(weights, targetLogProbs.dim() == 3 ? targetLogProbs.shape[2] : -1, "targetLogProbs [N, T, K]", targetLogProbs);
        CheckMask(mask, targetLogProbs.shape[0], targetLogProbs.shape[1]);
        using var scope = NewDisposeScope();
        var logp = targetLogProbs.to(weights.dtype);
        var top = logp.max(-1, keepdim: true).values.detach();
        var mixture = ((logp - top).exp() * weights).sum(-1).log() + top.squeeze(-1); // log Σ wₖ pₖ
        return MaskedMean(-mixture, mask).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Supervised, from full next-token distributions: <paramref name="logProbs"/> [N, T, K, V] expert log-probabilities,
    /// <paramref name="targets"/> [N, T] token ids, <paramref name="mask"/> [N, T]. The combined distribution is the
    /// mixture Σₖ wₖ·pₖ (<see cref="EnsembleAggregation.Probabilities"/>) or the normalised weighted geometric mean
    /// softmax(Σₖ wₖ·log pₖ) (<see cref="EnsembleAggregation.LogProbabilities"/>), as <see cref="EnsembleDecoder.Combine"/>
    /// combines them at decoding time; the loss is its mean cross-entropy over real target tokens.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logProbs, Tensor targets, Tensor mask, Tensor weights, EnsembleAggregation aggregation)
    {
        CheckWeights(weights, logProbs.dim() == 4 ? logProbs.shape[2] : -1, "logProbs [N, T, K, V]", logProbs);
        if (targets.dim() != 2 || targets.shape[0] != logProbs.shape[0] || targets.shape[1] != logProbs.shape[1])
            throw new ArgumentException($"targets must be [{logProbs.shape[0]}, {logProbs.shape[1]}], got [{string.Join(", ", targets.shape)}]", nameof(targets));
        CheckMask(mask, logProbs.shape[0], logProbs.shape[1]);
        using var scope = NewDisposeScope();
        var combined = Combine(logProbs.to(weights.dtype), weights, aggregation);                 // [N, T, V]
        var safeTargets = where(mask.to(ScalarType.Bool), targets.to(ScalarType.Int64), zeros_like(targets, ScalarType.Int64));
        var target = combined.gather(-1, safeTargets.unsqueeze(-1)).squeeze(-1);                  // [N, T]
        return MaskedMean(-target, mask).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Unsupervised (AdaMerging-style entropy minimisation, no labels): <paramref name="logProbs"/> [N, K, V] are the
    /// experts' next-token log-distributions at N positions; the loss is the mean entropy −Σᵥ p(v)·log p(v) of the
    /// combined distribution (mixture by default, or the normalised weighted geometric mean).
    /// </summary>
    public static Tensor Entropy(Tensor logProbs, Tensor weights, EnsembleAggregation aggregation = EnsembleAggregation.Probabilities)
    {
        CheckWeights(weights, logProbs.dim() == 3 ? logProbs.shape[1] : -1, "logProbs [N, K, V]", logProbs);
        using var scope = NewDisposeScope();
        var combined = Combine(logProbs.to(weights.dtype).unsqueeze(0), weights, aggregation).squeeze(0); // [N, V]
        return (-(combined.exp() * combined).sum(-1)).mean().MoveToOuterDisposeScope();
    }

    /// <summary>Combined log-distribution over the last dim from [..., K, V] expert log-probabilities.</summary>
    static Tensor Combine(Tensor logp, Tensor weights, EnsembleAggregation aggregation)
    {
        var w = weights.reshape(weights.shape[0], 1);
        if (aggregation == EnsembleAggregation.LogProbabilities)
            return nn.functional.log_softmax((logp * w).sum(-2), -1);
        var top = logp.amax([-2], keepdim: true).detach();                                      // [..., 1, V]
        return ((logp - top).exp() * w).sum(-2).log() + top.squeeze(-2);                        // log Σ wₖ pₖ
    }

    static Tensor MaskedMean(Tensor values, Tensor mask)
    {
        var m = mask.to(values.dtype);
        var count = m.sum();
        if (count.to(ScalarType.Float64).item<double>() <= 0) throw new ArgumentException("the mask selects no target token", nameof(mask));
        return (values * m).sum() / count;
    }

    static void CheckWeights(Tensor weights, long k, string what, Tensor input)
    {
        if (k < 0) throw new ArgumentException($"expected {what}, got [{string.Join(", ", input.shape)}]");
        if (weights.dim() != 1 || weights.shape[0] != k) throw new ArgumentException($"weights must be [{k}], got [{string.Join(", ", weights.shape)}]", nameof(weights));
        if (!weights.is_floating_point()) throw new ArgumentException($"weights must be floating point, got {weights.dtype}", nameof(weights));
    }

    static void CheckMask(Tensor mask, long n, long t)
    {
        if (mask.dim() != 2 || mask.shape[0] != n || mask.shape[1] != t)
            throw new ArgumentException($"mask must be [{n}, {t}], got [{string.Join(", ", mask.shape)}]", nameof(mask));
    }
}
