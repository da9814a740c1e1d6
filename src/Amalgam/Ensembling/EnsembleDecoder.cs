using Amalgam.Mixing;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Ensembling;

/// <summary>How the experts' next-token distributions are combined.</summary>
public enum EnsembleAggregation
{
    /// <summary>p(t) = Σₖ wₖ·pₖ(t): a mixture of the distributions.</summary>
    Probabilities,
    /// <summary>log p(t) ∝ Σₖ wₖ·log pₖ(t), renormalised: a weighted geometric mean (product of experts).</summary>
    LogProbabilities,
}

/// <summary>
/// Output ensembling's combination step: every prompt runs as K rows of one batch, row k with expert k alone
/// (one-hot weights through an installed <see cref="ExpertLibrary"/>); at every decoding step the K next-token
/// distributions of a prompt are combined here with the ensemble weights. The decoding and scoring loops that run
/// the rows are <c>Predictors.EnsemblePredictor</c>'s (one path for the study, the CLI and the server).
/// </summary>
public static class EnsembleDecoder
{
    /// <summary>
    /// Combined log-probabilities [prompts, ..., vocab] from expert logits [prompts·c, ..., vocab] (rows prompt-major:
    /// row p·c + j is prompt p's j-th expert), with weights [c] shared by all prompts or [prompts, c] per prompt.
    /// </summary>
    public static Tensor Combine(Tensor expertLogits, Tensor weights, EnsembleAggregation aggregation)
    {
        using var scope = NewDisposeScope();
        long c = weights.shape[^1];
        var rest = expertLogits.shape.Skip(1).ToArray();
        var logp = nn.functional.log_softmax(expertLogits.to(ScalarType.Float32), -1).reshape([-1, c, .. rest]);
        long prompts = logp.shape[0];
        if (weights.dim() == 2 && weights.shape[0] != prompts)
            throw new ArgumentException($"per-prompt weights must be [{prompts}, {c}], got [{string.Join(", ", weights.shape)}]");
        var w = weights.to(ScalarType.Float32).reshape([weights.dim() == 2 ? prompts : 1, c, .. rest.Select(_ => 1L)]);
        var combined = aggregation == EnsembleAggregation.Probabilities
            ? (logp + w.log()).logsumexp(1)                          // log Σ wₖ pₖ
            : nn.functional.log_softmax((logp * w).sum(1), -1);      // normalised Σ wₖ log pₖ
        return combined.MoveToOuterDisposeScope();
    }
}
