using System.Diagnostics;
using Amalgam.Ensembling;
using Amalgam.Fitting;
using Amalgam.Merging.Execution;
using Amalgam.Mixing;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Strategies;

/// <summary>Fitted weights, one row per group ([1, K] task-wise, [layers, K] layer-wise), with the fit's record.</summary>
public sealed record FittedWeights(double[][] Weights, IReadOnlyList<double> LossHistory, double UniformLoss, double FinalLoss,
    double Seconds, int Examples)
{
    public double[] Vector => Weights.Length == 1 ? Weights[0] : throw new InvalidOperationException("layer-wise weights have one row per layer");
}

/// <summary>
/// Non-uniform weights over the experts, fitted on labelled examples (validation splits) by gradient descent on the
/// simplex (<see cref="SimplexFit"/>): ensemble weights over precomputed expert outputs, and merge coefficients
/// (task-wise or layer-wise, AdaMerging-style) through the factored mixture, whose fixed weights equal merging
/// Σₖ wₖ·ΔWₖ.
/// </summary>
public static class WeightFitting
{
    public static FittedWeights Ensemble(ExpertSuite s, IReadOnlyList<LabelledExample> data, FitObjective objective,
        EnsembleAggregation aggregation, SimplexFitOptions? options = null, IProgress<SimplexFitStep>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        var sequences = data.Select(d => s.Sequence(d.Example)).ToList();
        var (logProbs, labels, mask) = ExpertOutputs.Teacher(s, sequences);
        using var _ = logProbs;
        using var __ = labels;
        using var ___ = mask;
        using var targets = ExpertOutputs.TargetLogProbs(logProbs, labels);
        using var first = ExpertOutputs.FirstAnswerPosition(logProbs, sequences);
        Func<Tensor, Tensor> loss = (objective, aggregation) switch
        {
            (FitObjective.Entropy, _) => w => EnsembleObjectives.Entropy(first, w, aggregation),
            (_, EnsembleAggregation.Probabilities) => w => EnsembleObjectives.CrossEntropy(targets, mask, w),
            _ => w => EnsembleObjectives.CrossEntropy(logProbs, labels.clamp_min(0), mask, w, aggregation),
        };
        return Fit([s.Count], loss, options, progress, clock, data.Count);
    }

    /// <summary>Merge coefficients: one row for all layers (task-wise) or one row per decoder layer (layer-wise).</summary>
    public static FittedWeights Merge(ExpertSuite s, IReadOnlyList<LabelledExample> data, bool layerWise, FitObjective objective,
        SimplexFitOptions? options = null, IProgress<SimplexFitStep>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        var sequences = data.Select(d => s.Sequence(d.Example)).ToList();
        int groups = layerWise ? s.Model.Config.NumHiddenLayers : 1;
        // The batch is cut into parts of at most MergeFitPart sequences (a cut that depends on the data alone), each a
        // forward and backward of its own on the workers; each part's loss is its mean, weighted by its share of the
        // labelled tokens (cross-entropy) or of the sequences (entropy), so the parts sum to the whole batch's mean.
        int partCount = (sequences.Count + MergeFitPart - 1) / MergeFitPart;
        var cuts = Enumerable.Range(0, partCount).Select(p => sequences.GetRange(sequences.Count * p / partCount,
            sequences.Count * (p + 1) / partCount - sequences.Count * p / partCount)).ToList();
        var batches = cuts.Select(part => SequenceBatch.Build(part, s.PadId)).ToList();
        try
        {
            var shares = objective == FitObjective.CrossEntropy
                ? batches.Select(b => (double)b.Labels.ne(SequenceBatch.Ignore).sum().item<long>()).ToList()
                : cuts.Select(c => (double)c.Count).ToList();
            double all = shares.Sum();
            var parts = cuts.Select((part, p) => new LossPart(shares[p] / all, w => Loss(w, batches[p].Ids, batches[p].Mask, batches[p].Labels,
                part.Select(q => (long)q.LossFrom - 1).ToArray()))).ToList();
            var fit = SimplexFit.Fit([groups, s.Count], parts, options, progress);
            // With no initial noise the first step is taken at uniform weights, so its loss is the uniform loss.
            double uniform = (options?.InitNoise ?? 0) == 0 ? fit.LossHistory[0]
                : UniformLoss([groups, s.Count], w => parts.Select(p => p.Loss(w) * p.Weight).Aggregate((a, b) => a + b));
            return new FittedWeights(fit.Weights, fit.LossHistory, uniform, fit.FinalLoss, clock.Elapsed.TotalSeconds, data.Count);
        }
        finally
        {
            foreach (var b in batches) { b.Ids.Dispose(); b.Mask.Dispose(); b.Labels.Dispose(); }
        }

        Tensor Loss(Tensor w, Tensor ids, Tensor mask, Tensor labels, long[] firstAnswer)
        {
            var logits = s.Model.forward(new DecoderInput(ids, mask, Mixing: new LayerWeights(w, ids.shape[0]))).Logits;
            if (objective == FitObjective.CrossEntropy)
                return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), labels.reshape(-1), ignore_index: SequenceBatch.Ignore);
            using var first = tensor(firstAnswer);
            var logp = nn.functional.log_softmax(logits[arange(firstAnswer.Length), first], -1);
            return -(logp.exp() * logp).sum(-1).mean();
        }
    }

    /// <summary>Sequences per forward of a merge-coefficient fit: the 48 of the study's default (4 per task × 12) run as 2 parts.</summary>
    public const int MergeFitPart = 24;

    /// <summary>
    /// LoraHub-style composition for one task from a handful of examples: gradient-free bounded search
    /// (<see cref="LoraHubSearch"/>, weights in [−1.5, 1.5], penalty L1·mean|w|) of the cross-entropy of the
    /// mixture Σₖ wₖ·ΔWₖ. Unlike LoraHub, which mixes the A and B factors separately, the updates are mixed exactly.
    /// </summary>
    public static (FittedWeights Weights, LoraHubResult Search) LoraHub(ExpertSuite s, IReadOnlyList<Evaluation.Suites.Example> examples,
        LoraHubOptions? options = null)
    {
        var clock = Stopwatch.StartNew();
        var (ids, mask, labels) = SequenceBatch.Build(examples.Select(s.Sequence).ToList(), s.PadId);
        using var _ = ids;
        using var __ = mask;
        using var ___ = labels;
        double Loss(double[] w)
        {
            using var mode = inference_mode();
            using var scope = NewDisposeScope();
            var weights = tensor(w.Select(x => (float)x).ToArray()).unsqueeze(0).expand(ids.shape[0], -1);
            using var mixing = new FixedMixing(weights);
            var logits = s.Model.forward(new DecoderInput(ids, mask, Mixing: mixing)).Logits;
            return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), labels.reshape(-1), ignore_index: SequenceBatch.Ignore).item<float>();
        }
        var search = LoraHubSearch.Minimize(Loss, s.Count, options);
        // The trace's first evaluation is the starting point (the base model's loss at the default start, w = 0).
        return (new FittedWeights([search.Weights], search.Trace.Select(t => t.PenalisedLoss).ToList(), search.Trace[0].Loss, search.Loss,
            clock.Elapsed.TotalSeconds, examples.Count), search);
    }

    static FittedWeights Fit(long[] shape, Func<Tensor, Tensor> loss, SimplexFitOptions? options, IProgress<SimplexFitStep>? progress,
        Stopwatch clock, int examples)
    {
        var fit = SimplexFit.Fit(shape, loss, options, progress);
        // With no initial noise the first step is taken at uniform weights, so its loss is the uniform loss.
        double uniform = (options?.InitNoise ?? 0) == 0 ? fit.LossHistory[0] : UniformLoss(shape, loss);
        return new FittedWeights(fit.Weights, fit.LossHistory, uniform, fit.FinalLoss, clock.Elapsed.TotalSeconds, examples);
    }

    static double UniformLoss(long[] shape, Func<Tensor, Tensor> loss)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return loss(full(shape, 1.0 / shape[^1])).item<float>();
    }

    /// <summary>Per-module weights: a module of decoder layer l uses row l (row 0 when there is one row), the same for every example.</summary>
    sealed class LayerWeights(Tensor weights, long batch) : IMixingPolicy
    {
        public Tensor Weights(string module, Tensor x)
        {
            int row = weights.shape[0] == 1 ? 0 : ParameterResolver.LayerOf(module) ?? throw new InvalidOperationException($"{module}: not in a decoder layer, so it has no layer-wise weight");
            return weights[row].unsqueeze(0).expand(batch, -1);
        }
    }
}
