using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Predictors;

/// <summary>The model as it is (base, merged, or with adapters attached), batched.</summary>
public sealed class ModelPredictor(CausalLM model, int batchSize = 64) : IPredictor
{
    public CausalLM Model => model;

    public IReadOnlyList<IReadOnlyList<long>> Generate(IReadOnlyList<IReadOnlyList<long>> prompts, int maxNewTokens,
        IReadOnlyCollection<long> stopTokens, long padId) =>
        BatchedScoring.Batches(prompts.Count, batchSize)
            .SelectMany(b => GreedyDecoder.Generate(model, prompts.Skip(b.Start).Take(b.Count).ToList(), maxNewTokens, stopTokens, padId))
            .ToList();

    public IReadOnlyList<double> LogLikelihoods(IReadOnlyList<TokenSequence> sequences, long padId) =>
        BatchedScoring.Batches(sequences.Count, batchSize)
            .SelectMany(b => BatchedScoring.Score(model, sequences.Skip(b.Start).Take(b.Count).ToList(), padId, 1, null,
                logits => nn.functional.log_softmax(logits, -1)))
            .ToList();
}
