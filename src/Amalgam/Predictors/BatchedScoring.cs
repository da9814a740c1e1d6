using Amalgam.Mixing;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Predictors;

/// <summary>The loops every predictor shares: request sets cut into batches, and teacher-forced scoring.</summary>
internal static class BatchedScoring
{
    public static IEnumerable<(int Start, int Count)> Batches(int total, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        for (int start = 0; start < total; start += batchSize) yield return (start, Math.Min(batchSize, total - start));
    }

    public static IReadOnlyList<long> Prompt(TokenSequence s) => s.Ids[..s.LossFrom];

    /// <summary>
    /// Summed log-probabilities of the label tokens of one batch whose sequences each run as <paramref name="copies"/>
    /// consecutive rows; <paramref name="combine"/> maps the rows' logits [rows, T, V] to one log-distribution per
    /// sequence [n, T, V] (log_softmax for a single row).
    /// </summary>
    public static double[] Score(CausalLM model, IReadOnlyList<TokenSequence> batch, long padId, int copies, IMixingPolicy? mixing,
        Func<Tensor, Tensor> combine)
    {
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var rows = batch.SelectMany(s => Enumerable.Repeat(s, copies)).ToList();
        var (ids, mask, labels) = SequenceBatch.Build(rows, padId);
        var logProbs = combine(model.forward(new DecoderInput(ids, mask, Mixing: mixing)).Logits);
        var perSequence = labels.reshape(batch.Count, copies, -1).select(1, 0);
        var scored = perSequence.ne(SequenceBatch.Ignore).to(ScalarType.Float32);
        var picked = logProbs.gather(-1, perSequence.clamp_min(0).unsqueeze(-1)).squeeze(-1) * scored;
        return picked.sum(1).to(ScalarType.Float64).data<double>().ToArray();
    }
}
