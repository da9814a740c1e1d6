using Amalgam.Ensembling;
using Amalgam.Fitting;
using static TorchSharp.torch;

namespace Amalgam.Tests.Fitting;

public class EnsembleObjectivesTests
{
    [Theory]
    [InlineData(EnsembleAggregation.Probabilities)]
    [InlineData(EnsembleAggregation.LogProbabilities)]
    public void Full_distribution_cross_entropy_matches_the_decoders_combination(EnsembleAggregation aggregation)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(4);
        var logits = randn(new long[] { 2, 3, 4, 7 }, ScalarType.Float64, generator: g) * 2;   // [N, T, K, V]
        var logp = nn.functional.log_softmax(logits, -1);
        var targets = randint(0, 7, new long[] { 2, 3 }, ScalarType.Int64, generator: g);
        var mask = tensor(new double[] { 1, 1, 0, 1, 0, 0 }, new long[] { 2, 3 });
        var w = tensor(new double[] { 0.5, 0.2, 0.1, 0.2 });
        double expected = 0;
        int count = 0;
        for (int n = 0; n < 2; n++)
            for (int t = 0; t < 3; t++)
            {
                if (mask[n, t].item<double>() == 0) continue;
                var combined = EnsembleDecoder.Combine(logits[n, t], w, aggregation); // float32 path, rows = experts of one prompt
                expected -= combined[0, targets[n, t].item<long>()].item<float>();
                count++;
            }
        expected /= count;
        double actual = EnsembleObjectives.CrossEntropy(logp, targets, mask, w, aggregation).item<double>();
        Assert.Equal(expected, actual, 5);
        if (aggregation == EnsembleAggregation.Probabilities)
        {   // the target-only form gives the same number
            var targetLogp = logp.gather(-1, targets.reshape(2, 3, 1, 1).expand(2, 3, 4, 1)).squeeze(-1);
            Assert.Equal(actual, EnsembleObjectives.CrossEntropy(targetLogp, mask, w).item<double>(), 10);
        }
    }

    [Fact]
    public void Target_cross_entropy_is_stable_when_every_expert_finds_the_target_unlikely()
    {
        using var scope = NewDisposeScope();
        var logp = tensor(new double[] { -800, -801 }, new long[] { 1, 1, 2 });
        var w = tensor(new double[] { 0.5, 0.5 });
        double expected = -(-800 + Math.Log(0.5 + 0.5 * Math.Exp(-1)));
        Assert.Equal(expected, EnsembleObjectives.CrossEntropy(logp, ones(1, 1, ScalarType.Float64), w).item<double>(), 9);
    }

    [Fact]
    public void Entropy_is_the_mean_entropy_of_the_mixture()
    {
        using var scope = NewDisposeScope();
        // position 0: experts one-hot on different tokens → mixture [0.25, 0.75] → entropy H; position 1: both uniform over 2 → ln 2
        var p = tensor(new double[] { 1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5 }, new long[] { 2, 2, 2 });
        var logp = (p + 1e-300).log();
        var w = tensor(new double[] { 0.25, 0.75 });
        double h0 = -(0.25 * Math.Log(0.25) + 0.75 * Math.Log(0.75));
        Assert.Equal((h0 + Math.Log(2)) / 2, EnsembleObjectives.Entropy(logp, w).item<double>(), 9);
        Assert.Throws<ArgumentException>(() => EnsembleObjectives.Entropy(logp, tensor(new double[] { 1, 0, 0 })));
    }

    [Fact]
    public void An_empty_mask_is_refused()
    {
        using var scope = NewDisposeScope();
        Assert.Contains("mask", Assert.Throws<ArgumentException>(() => EnsembleObjectives.CrossEntropy(zeros(1, 2, 2), zeros(1, 2), full(2, 0.5f))).Message);
    }
}
