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
        if ((weights < 0).any().item<bool>() || Math.Abs(weights.sum().item<float>() - 1) > 1e-4)
            throw new ArgumentException("ensemble weights must be non-negative and sum to 1");
        if (prompts.Any(p => p.Count == 0)) throw new ArgumentException("every prompt needs at least one token");
        int n = prompts.Count, rows = n * k, width = prompts.Max(p => p.Count);
        var stop = stopTokens?.ToHashSet() ?? [];
        var outputs = Enumerable.Range(0, n).Select(_ => new List<long>()).ToArray();
        var done = new bool[n];

        var ids = new long[rows * width];
        var mask = new long[rows * width];
        for (int p = 0; p < n; p++)
            for (int e = 0; e < k; e++)
                for (int i = 0; i < width; i++)
                {
                    int at = (p * k + e) * width + i, j = i - (width - prompts[p].Count);
                    ids[at] = j >= 0 ? prompts[p][j] : padId;
                    mask[at] = j >= 0 ? 1 : 0;
                }
        using var _ = inference_mode();
        using var rowExpert = eye(k).repeat(n, 1);                    // row p·K + e uses expert e alone
        var mixing = new FixedMixing(rowExpert);
        using var cache = new KvCache(model.Config.NumHiddenLayers);
        long[] stepIds = ids, stepMask = mask;
        int stepWidth = width;
        for (int step = 0; step < maxNewTokens && !done.All(d => d); step++)
        {
            long[] next;
            using (var scope = NewDisposeScope())
            {
                var input = new DecoderInput(tensor(stepIds, [rows, stepWidth]), tensor(stepMask, [rows, stepWidth]), cache, LastPositionOnly: true, Mixing: mixing);
                var logits = model.forward(input).Logits.select(1, 0);           // [rows, vocab]
                next = Combine(logits, weights, aggregation).argmax(-1).data<long>().ToArray();
            }
            for (int p = 0; p < n; p++)
            {
                if (done[p]) continue;
                if (stop.Contains(next[p])) done[p] = true;
                else outputs[p].Add(next[p]);
            }
            stepIds = Enumerable.Range(0, rows).Select(r => done[r / k] ? padId : next[r / k]).ToArray();
            stepMask = Enumerable.Repeat(1L, rows).ToArray();
            stepWidth = 1;
        }
        return outputs;
    }
}
