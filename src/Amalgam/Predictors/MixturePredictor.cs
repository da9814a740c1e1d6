using Amalgam.Mixing;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Predictors;

/// <summary>
/// Aggregation by parameters: with an <see cref="ExpertLibrary"/> installed on the model, every row runs with its
/// own mixture Σₖ wₖ·ΔWₖ in factored form. The weights come either per example, from all prompts of the request
/// set at once (a router, an oracle, fixed merge coefficients, a group-wise merge), or per token and per module
/// from a policy that reads each layer's input (Arrow).
/// </summary>
public sealed class MixturePredictor : IPredictor
{
    private readonly Func<IReadOnlyList<IReadOnlyList<long>>, Tensor>? perExample;
    private readonly IMixingPolicy? perToken;
    private readonly int batchSize;

    /// <param name="model">a model with an <see cref="ExpertLibrary"/> installed</param>
    /// <param name="weightsFor">prompts (bos included) → weights [prompts, K]; called once per request set</param>
    /// <param name="batchSize">prompts per forward</param>
    public MixturePredictor(CausalLM model, Func<IReadOnlyList<IReadOnlyList<long>>, Tensor> weightsFor, int batchSize = 64)
    {
        Model = model;
        perExample = weightsFor;
        this.batchSize = batchSize;
    }

    public MixturePredictor(CausalLM model, IMixingPolicy perTokenPolicy, int batchSize = 64)
    {
        Model = model;
        perToken = perTokenPolicy;
        this.batchSize = batchSize;
    }

    public CausalLM Model { get; }

    /// <summary>The same weights [K] for every row of the set (a merge in factored form).</summary>
    public static MixturePredictor Fixed(CausalLM model, IReadOnlyList<double> weights, int batchSize = 64) =>
        new(model, prompts => EnsemblePredictor.Rows(weights, prompts.Count), batchSize);

    public IReadOnlyList<IReadOnlyList<long>> Generate(IReadOnlyList<IReadOnlyList<long>> prompts, int maxNewTokens,
        IReadOnlyCollection<long> stopTokens, long padId) =>
        Run(prompts, (b, policy) => GreedyDecoder.Generate(Model, prompts.Skip(b.Start).Take(b.Count).ToList(), maxNewTokens, stopTokens, padId, policy));

    public IReadOnlyList<double> LogLikelihoods(IReadOnlyList<TokenSequence> sequences, long padId) =>
        Run(sequences.Select(BatchedScoring.Prompt).ToList(), (b, policy) => BatchedScoring.Score(Model,
            sequences.Skip(b.Start).Take(b.Count).ToList(), padId, 1, policy, logits => nn.functional.log_softmax(logits, -1)));

    List<T> Run<T>(IReadOnlyList<IReadOnlyList<long>> prompts, Func<(int Start, int Count), IMixingPolicy, IEnumerable<T>> batch)
    {
        if (prompts.Count == 0) return [];
        if (perToken is not null)
            return BatchedScoring.Batches(prompts.Count, batchSize).SelectMany(b => batch(b, perToken)).ToList();
        using var weights = perExample!(prompts).to(ScalarType.Float32).contiguous();
        if (weights.dim() != 2 || weights.shape[0] != prompts.Count)
            throw new ArgumentException($"routing weights must be [{prompts.Count}, K], got [{string.Join(", ", weights.shape)}]");
        var results = new List<T>(prompts.Count);
        foreach (var b in BatchedScoring.Batches(prompts.Count, batchSize))
        {
            using var slice = weights.narrow(0, b.Start, b.Count).contiguous();
            using var mixing = new FixedMixing(slice);
            results.AddRange(batch(b, mixing));
        }
        return results;
    }
}
