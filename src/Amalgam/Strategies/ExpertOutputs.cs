using Amalgam.Models;
using Amalgam.Mixing;
using static TorchSharp.torch;

namespace Amalgam.Strategies;

/// <summary>
/// Every expert's next-token log-distributions on a set of examples, computed once (each expert alone, one-hot
/// weights through the installed library) so that ensemble weights can be fitted without running the model again.
/// </summary>
public static class ExpertOutputs
{
    /// <summary>
    /// Log-distributions [N, T, K, V] at every position of bos + prompt + target + eos, the next-token labels [N, T]
    /// (−100 outside the target and eos), and the 0/1 mask of the labelled positions.
    /// </summary>
    public static (Tensor LogProbs, Tensor Labels, Tensor Mask) Teacher(ExpertSuite s, IReadOnlyList<TokenSequence> sequences)
    {
        // no_grad, not inference_mode: the outputs feed a fit whose weights need gradients.
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var (ids, mask, labels) = SequenceBatch.Build(sequences, s.PadId);
        // One forward per expert, side by side on the workers; each worker's result leaves its own scope and joins this one.
        var perExpert = Runtime.TorchWorkers.Map(Enumerable.Range(0, s.Count).ToList(), k =>
        {
            using var grad = no_grad();
            using var inner = NewDisposeScope();
            var w = nn.functional.one_hot(full(new long[] { ids.shape[0] }, k, ScalarType.Int64), s.Count).to(ScalarType.Float32);
            using var mixing = new FixedMixing(w);
            return nn.functional.log_softmax(s.Model.forward(new Models.DecoderInput(ids, mask, Mixing: mixing)).Logits, -1).DetachFromDisposeScope();
        });
        foreach (var t in perExpert) scope.Attach(t);
        var logProbs = stack(perExpert, 2);                                    // [N, T, K, V]
        var labelled = labels.ne(SequenceBatch.Ignore);
        return (logProbs.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), labelled.to(ScalarType.Float32).MoveToOuterDisposeScope());
    }

    /// <summary>The log-probability of each label token under each expert, [N, T, K] (0 where unlabelled).</summary>
    public static Tensor TargetLogProbs(Tensor logProbs, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var index = labels.clamp_min(0).unsqueeze(-1).unsqueeze(-1).expand(-1, -1, logProbs.shape[2], 1);
        return logProbs.gather(-1, index).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>The experts' log-distributions at each sequence's first answer position (the prompt's last token), [N, K, V].</summary>
    public static Tensor FirstAnswerPosition(Tensor logProbs, IReadOnlyList<TokenSequence> sequences)
    {
        using var scope = NewDisposeScope();
        var at = tensor(sequences.Select(q => (long)q.LossFrom - 1).ToArray());
        return logProbs[arange(sequences.Count), at].MoveToOuterDisposeScope();
    }
}
