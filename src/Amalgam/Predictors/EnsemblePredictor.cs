using Amalgam.Ensembling;
using Amalgam.Mixing;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Predictors;

/// <summary>
/// Aggregation by outputs: every prompt runs as c rows of one batch, row j with one chosen expert alone; the c
/// next-token distributions are combined with per-prompt weights at every step (<see cref="EnsembleDecoder.Combine"/>),
/// and options are scored on the combined distribution. A uniform or fitted ensemble chooses all K experts for every
/// prompt; a router aggregating by outputs chooses its top-k.
/// </summary>
public sealed class EnsemblePredictor : IPredictor
{
    private readonly Func<IReadOnlyList<IReadOnlyList<long>>, (Tensor Experts, Tensor Weights)> choose;
    private readonly EnsembleAggregation aggregation;
    private readonly int experts, batchSize;

    /// <param name="model">a model with an <see cref="ExpertLibrary"/> of <paramref name="experts"/> experts installed</param>
    /// <param name="experts">K, the number of experts in the library</param>
    /// <param name="choose">prompts → the experts of each prompt [n, c] (int64) and their weights [n, c] (rows sum to 1)</param>
    /// <param name="aggregation">how the c distributions are combined</param>
    /// <param name="batchSize">prompts per forward (each runs as c rows)</param>
    public EnsemblePredictor(CausalLM model, int experts, Func<IReadOnlyList<IReadOnlyList<long>>, (Tensor Experts, Tensor Weights)> choose,
        EnsembleAggregation aggregation, int batchSize = 64)
    {
        Model = model;
        this.experts = experts;
        this.choose = choose;
        this.aggregation = aggregation;
        this.batchSize = batchSize;
    }

    /// <summary>All experts for every prompt, with one weight vector [K].</summary>
    public static EnsemblePredictor Weighted(CausalLM model, IReadOnlyList<double> weights, EnsembleAggregation aggregation, int batchSize = 64)
    {
        int k = weights.Count;
        if (model.Linears.Values.Select(l => l.Mixture).FirstOrDefault(m => m is not null) is { } library && library.Experts != k)
            throw new ArgumentException($"ensemble weights must be [{library.Experts}] (one per expert of the installed library), got [{k}]");
        if (weights.Any(w => !(w >= 0)) || Math.Abs(weights.Sum() - 1) > 1e-4)
            throw new ArgumentException($"ensemble weights must be non-negative and sum to 1, got [{string.Join(", ", weights)}]");
        return new EnsemblePredictor(model, k, p => (tensor(Enumerable.Range(0, p.Count * k).Select(i => (long)(i % k)).ToArray(), [p.Count, k]),
            Rows(weights, p.Count)), aggregation, batchSize);
    }

    /// <summary>A new float32 [rows, K] tensor repeating <paramref name="values"/> on every row (the caller owns it).</summary>
    internal static Tensor Rows(IReadOnlyList<double> values, int rows)
    {
        var data = new float[rows * values.Count];
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < values.Count; k++) data[r * values.Count + k] = (float)values[k];
        return tensor(data, [rows, values.Count]);
    }

    public CausalLM Model { get; }

    public IReadOnlyList<IReadOnlyList<long>> Generate(IReadOnlyList<IReadOnlyList<long>> prompts, int maxNewTokens,
        IReadOnlyCollection<long> stopTokens, long padId) =>
        Run(prompts, (b, copies, mixing, w) => GreedyDecoder.Decode(Model, prompts.Skip(b.Start).Take(b.Count).ToList(), copies, maxNewTokens,
            stopTokens, padId, mixing, logits => EnsembleDecoder.Combine(logits, w, aggregation).argmax(-1).data<long>().ToArray()));

    public IReadOnlyList<double> LogLikelihoods(IReadOnlyList<TokenSequence> sequences, long padId) =>
        Run(sequences.Select(BatchedScoring.Prompt).ToList(), (b, copies, mixing, w) => BatchedScoring.Score(Model,
            sequences.Skip(b.Start).Take(b.Count).ToList(), padId, copies, mixing, logits => EnsembleDecoder.Combine(logits, w, aggregation)));

    List<T> Run<T>(IReadOnlyList<IReadOnlyList<long>> prompts, Func<(int Start, int Count), int, IMixingPolicy, Tensor, IEnumerable<T>> batch)
    {
        if (prompts.Count == 0) return [];
        var (chosen, weights) = choose(prompts);
        using var _ = chosen;
        using var __ = weights;
        if (chosen.dim() != 2 || chosen.shape[0] != prompts.Count || !weights.shape.SequenceEqual(chosen.shape))
            throw new ArgumentException($"ensemble choice must be experts and weights of shape [{prompts.Count}, c], got [{string.Join(", ", chosen.shape)}] and [{string.Join(", ", weights.shape)}]");
        using (NewDisposeScope())
        {
            if ((chosen < 0).any().item<bool>() || (chosen >= experts).any().item<bool>()) throw new ArgumentException($"ensemble experts must be in [0, {experts})");
            if ((weights < 0).any().item<bool>() || ((weights.sum(1) - 1).abs() > 1e-4).any().item<bool>())
                throw new ArgumentException("ensemble weights must be non-negative and sum to 1 for every prompt");
        }
        int copies = (int)chosen.shape[1];
        var results = new List<T>(prompts.Count);
        foreach (var b in BatchedScoring.Batches(prompts.Count, batchSize))
        {
            using var scope = NewDisposeScope();
            // Row p·c + j runs expert chosen[p, j] alone.
            var rowExpert = chosen.narrow(0, b.Start, b.Count).reshape(-1, 1).to(ScalarType.Int64);
            var oneHot = zeros(new long[] { rowExpert.shape[0], experts }).scatter_(1, rowExpert, ones(rowExpert.shape));
            var w = weights.narrow(0, b.Start, b.Count).to(ScalarType.Float32).contiguous();
            using var mixing = new FixedMixing(oneHot);
            results.AddRange(batch(b, copies, mixing, w));
        }
        return results;
    }
}
