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
/// Output ensembling: every prompt runs as K rows of one batch, row k with expert k alone (one-hot weights through
/// an installed <see cref="ExpertLibrary"/>); at every decoding step the K next-token distributions of a prompt are
/// combined with the ensemble weights, the combined argmax is appended to all K rows, and the KV cache carries on.
/// </summary>
public static class EnsembleDecoder
{
    /// <summary>Combined log-probabilities [prompts, vocab] from expert logits [prompts·K, vocab] (rows prompt-major).</summary>
    public static Tensor Combine(Tensor expertLogits, Tensor weights, EnsembleAggregation aggregation)
    {
        using var scope = NewDisposeScope();
        long k = weights.shape[0];
        var logp = nn.functional.log_softmax(expertLogits.to(ScalarType.Float32), -1).reshape(-1, k, expertLogits.shape[^1]);
        var w = weights.to(ScalarType.Float32).reshape(1, k, 1);
        var combined = aggregation == EnsembleAggregation.Probabilities
            ? (logp + w.log()).logsumexp(1)                          // log Σ wₖ pₖ
            : nn.functional.log_softmax((logp * w).sum(1), -1);      // normalised Σ wₖ log pₖ
        return combined.MoveToOuterDisposeScope();
    }

    public static IReadOnlyList<IReadOnlyList<long>> Generate(CausalLM model, ExpertLibrary library, IReadOnlyList<IReadOnlyList<long>> prompts,
        Tensor weights, EnsembleAggregation aggregation, int maxNewTokens, IReadOnlyCollection<long>? stopTokens = null, long padId = 0)
    {
        int k = library.Count;
        if (weights.dim() != 1 || weights.shape[0] != k) throw new ArgumentException($"ensemble weights must be [{k}], got [{string.Join(", ", weights.shape)}]");
        using (NewDisposeScope())
            if ((weights < 0).any().item<bool>() || Math.Abs(weights.sum().item<float>() - 1) > 1e-4)
                throw new ArgumentException("ensemble weights must be non-negative and sum to 1");
        using var rowExpert = eye(k).repeat(prompts.Count, 1); // row p·K + e uses expert e alone
        return GreedyDecoder.Decode(model, prompts, k, maxNewTokens, stopTokens, padId, new FixedMixing(rowExpert),
            logits => Combine(logits, weights, aggregation).argmax(-1).data<long>().ToArray());
    }
}
