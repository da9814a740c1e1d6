using Amalgam.Ensembling;
using Amalgam.Fitting;
using static TorchSharp.torch;

namespace Amalgam.Tests.Fitting;

// Counts tensors with the process-wide Tensor.TotalCount, so it runs apart from tests that create tensors in parallel.
[Collection(nameof(Amalgam.Tests.Tensors.TensorCountCollection))]
public class SimplexFitTests
{
    /// <summary>
    /// K = 3 fixed distributions over 6 tokens, N tokens sampled from their mixture with weights <paramref name="truth"/>;
    /// returns log pₖ(token) as [N, 1, K].
    /// </summary>
    static Tensor MixtureSample(double[] truth, int n, int seed)
    {
        double[][] experts =
        [
            [0.55, 0.25, 0.05, 0.05, 0.05, 0.05],
            [0.05, 0.05, 0.55, 0.25, 0.05, 0.05],
            [0.05, 0.05, 0.05, 0.15, 0.35, 0.35],
        ];
        var rng = new Random(seed);
        var logp = new double[n * 3];
        for (int i = 0; i < n; i++)
        {
            int k = Pick(truth, rng.NextDouble());
            int token = Pick(experts[k], rng.NextDouble());
            for (int e = 0; e < 3; e++) logp[i * 3 + e] = Math.Log(experts[e][token]);
        }
        return tensor(logp, new long[] { n, 1, 3 });
    }

    static int Pick(double[] p, double u)
    {
        double acc = 0;
        for (int i = 0; i < p.Length; i++) { acc += p[i]; if (u < acc) return i; }
        return p.Length - 1;
    }

    [Fact]
    public void Recovers_planted_mixture_weights_from_cross_entropy()
    {
        double[] truth = [0.6, 0.3, 0.1];
        using var logp = MixtureSample(truth, 4000, seed: 1);
        using var mask = ones(4000, 1);
        var result = SimplexFit.Fit([3], w => EnsembleObjectives.CrossEntropy(logp, mask, w), new SimplexFitOptions(Steps: 300, LearningRate: 0.1));
        var w = result.Vector;
        for (int k = 0; k < 3; k++) Assert.True(Math.Abs(w[k] - truth[k]) < 0.05, $"w[{k}] = {w[k]}, truth {truth[k]}");
        Assert.Equal(1.0, w.Sum(), 9);
        double uniform = result.LossHistory[0];
        using (var u = full(3, 1.0 / 3)) Assert.Equal(EnsembleObjectives.CrossEntropy(logp, mask, u).item<float>(), uniform, 5);
        Assert.True(result.FinalLoss < uniform - 0.05, $"fitted {result.FinalLoss} vs uniform {uniform}");
        using var t = tensor(truth.Select(x => (float)x).ToArray());
        Assert.True(result.FinalLoss <= EnsembleObjectives.CrossEntropy(logp, mask, t).item<float>() + 1e-4); // the fit is the sample's optimum
        Assert.Equal(300, result.LossHistory.Count);
    }

    [Fact]
    public void A_loss_cut_into_weighted_parts_fits_as_the_whole()
    {
        // Mean cross-entropy over 3000 tokens = 1000/3000 · mean over the first 1000 + 2000/3000 · mean over the rest.
        using var logp = MixtureSample([0.5, 0.2, 0.3], 3000, seed: 4);
        using var mask = ones(3000, 1);
        using var head = logp.narrow(0, 0, 1000);
        using var tail = logp.narrow(0, 1000, 2000);
        using var headMask = ones(1000, 1);
        using var tailMask = ones(2000, 1);
        var options = new SimplexFitOptions(Steps: 120, LearningRate: 0.1);
        var whole = SimplexFit.Fit([2, 3], w => EnsembleObjectives.CrossEntropy(logp, mask, w[0]) + EnsembleObjectives.CrossEntropy(logp, mask, w[1]) * 0.5, options);
        var parts = SimplexFit.Fit([2, 3],
        [
            new LossPart(1.0 / 3, w => EnsembleObjectives.CrossEntropy(head, headMask, w[0]) + EnsembleObjectives.CrossEntropy(head, headMask, w[1]) * 0.5),
            new LossPart(2.0 / 3, w => EnsembleObjectives.CrossEntropy(tail, tailMask, w[0]) + EnsembleObjectives.CrossEntropy(tail, tailMask, w[1]) * 0.5),
        ], options);
        Assert.Equal(whole.LossHistory.Count, parts.LossHistory.Count);
        // float32 losses: the two sums round differently in the last bits.
        for (int i = 0; i < whole.LossHistory.Count; i++) Assert.Equal(whole.LossHistory[i], parts.LossHistory[i], 1e-5);
        Assert.Equal(whole.FinalLoss, parts.FinalLoss, 1e-5);
        for (int r = 0; r < 2; r++)
            for (int k = 0; k < 3; k++) Assert.Equal(whole.Weights[r][k], parts.Weights[r][k], 1e-5);
        Assert.Throws<ArgumentException>(() => SimplexFit.Fit([3], Array.Empty<LossPart>()));
        Assert.Throws<ArgumentException>(() => SimplexFit.Fit([3], [new LossPart(-1, w => w.sum())]));
    }

    [Fact]
    public void Layer_wise_shape_fits_each_row_on_its_own_simplex()
    {
        using var targets = tensor(new float[] { 0.7f, 0.2f, 0.1f, 0.1f, 0.1f, 0.8f }, new long[] { 2, 3 });
        var result = SimplexFit.Fit([2, 3], w => (w - targets).pow(2).sum(), new SimplexFitOptions(Steps: 400, LearningRate: 0.05));
        Assert.Equal(2, result.Weights.Length);
        double[][] expected = [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]];
        for (int r = 0; r < 2; r++)
        {
            Assert.Equal(1.0, result.Weights[r].Sum(), 6);
            for (int k = 0; k < 3; k++) Assert.True(Math.Abs(result.Weights[r][k] - expected[r][k]) < 0.01, $"row {r}, w[{k}] = {result.Weights[r][k]}");
        }
        Assert.Throws<InvalidOperationException>(() => result.Vector);
    }

    [Fact]
    public void The_fit_is_deterministic_reports_progress_and_frees_its_tensors()
    {
        using var logp = MixtureSample([0.2, 0.2, 0.6], 500, seed: 2);
        using var mask = ones(500, 1);
        var options = new SimplexFitOptions(Steps: 20, LearningRate: 0.1, Seed: 5, InitNoise: 0.5);
        var steps = new List<SimplexFitStep>();
        long before = Tensor.TotalCount;
        var a = SimplexFit.Fit([3], w => EnsembleObjectives.CrossEntropy(logp, mask, w), options, new SyncProgress<SimplexFitStep>(steps.Add));
        long after = Tensor.TotalCount;
        var b = SimplexFit.Fit([3], w => EnsembleObjectives.CrossEntropy(logp, mask, w), options);
        Assert.Equal(a.LossHistory, b.LossHistory);
        Assert.Equal(a.Vector, b.Vector);
        Assert.Equal(a.LossHistory, steps.Select(s => s.Loss));
        Assert.Equal(Enumerable.Range(0, 20), steps.Select(s => s.Step));
        Assert.True(after - before < 8, $"{after - before} tensors left alive"); // optimiser state is freed
        var c = SimplexFit.Fit([3], w => EnsembleObjectives.CrossEntropy(logp, mask, w), options with { Seed = 6 });
        Assert.NotEqual(a.LossHistory[0], c.LossHistory[0]);   // the seed only moves the (noisy) start
    }

    [Fact]
    public void Entropy_minimisation_moves_weight_to_the_most_confident_expert()
    {
        var g = new Generator(9);
        using var scope = NewDisposeScope();
        var logits = randn(new long[] { 40, 3, 10 }, generator: g);
        logits[.., 1, ..] *= 6;                                   // expert 1 is sharp, the others flat-ish
        var logp = nn.functional.log_softmax(logits, -1);
        var result = SimplexFit.Fit([3], w => EnsembleObjectives.Entropy(logp, w), new SimplexFitOptions(Steps: 200, LearningRate: 0.1));
        Assert.True(result.FinalLoss < result.LossHistory[0] - 0.3, $"{result.LossHistory[0]} → {result.FinalLoss}");
        Assert.True(result.Vector[1] > 0.9, $"w = [{string.Join(", ", result.Vector)}]");
        for (int i = 1; i < result.LossHistory.Count; i++) Assert.True(result.LossHistory[i] <= result.LossHistory[i - 1] + 1e-3);
    }

    [Fact]
    public void Bad_shapes_and_losses_are_refused()
    {
        Assert.Throws<ArgumentException>(() => SimplexFit.Fit([], w => w.sum()));
        Assert.Throws<ArgumentException>(() => SimplexFit.Fit([2, 0], w => w.sum()));
        Assert.Contains("scalar", Assert.Throws<ArgumentException>(() => SimplexFit.Fit([3], w => w * 2)).Message);
        Assert.Throws<ArgumentException>(() => SimplexFit.Fit([3], w => w.sum(), new SimplexFitOptions(Steps: 0)));
    }

    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
