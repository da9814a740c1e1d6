using Amalgam.Fitting;

namespace Amalgam.Tests.Fitting;

public class LoraHubSearchTests
{
    static readonly double[] Target = [0.8, -0.5, 0.3, 1.2, 0.0];
    static double Quadratic(double[] w) => w.Zip(Target, (a, b) => (a - b) * (a - b)).Sum();

    [Fact]
    public void Beats_the_zero_start_on_a_planted_quadratic_for_every_seed()
    {
        double start = Quadratic(new double[5]);
        var finals = new List<double>();
        for (int seed = 0; seed < 20; seed++)
        {
            var result = LoraHubSearch.Minimize(Quadratic, 5, new LoraHubOptions(Seed: seed));
            Assert.Equal(40, result.Trace.Count);
            Assert.Equal(start, result.Trace[0].PenalisedLoss);
            Assert.True(result.PenalisedLoss < start, $"seed {seed}: {result.PenalisedLoss} vs start {start}");
            Assert.Equal(result.Trace.Where(t => t.Accepted).Min(t => t.PenalisedLoss), result.PenalisedLoss);
            finals.Add(result.PenalisedLoss);
        }
        Assert.True(finals.Average() < 0.4 * start, $"mean best {finals.Average()} vs start {start}");
    }

    [Fact]
    public void A_larger_budget_gets_close_to_the_penalised_optimum()
    {
        // minimiser of Σ(w − t)² + 0.05·mean|w|: each coordinate shrinks towards 0 by 0.05/(2·5) = 0.005
        double[] optimum = Target.Select(t => t == 0 ? 0 : t - Math.Sign(t) * 0.005).ToArray();
        for (int seed = 0; seed < 10; seed++)
        {
            var result = LoraHubSearch.Minimize(Quadratic, 5, new LoraHubOptions(Budget: 600, Seed: seed));
            for (int j = 0; j < 5; j++) Assert.True(Math.Abs(result.Weights[j] - optimum[j]) < 0.05, $"seed {seed}: w[{j}] = {result.Weights[j]}");
        }
    }

    [Fact]
    public void Every_candidate_stays_inside_the_bounds()
    {
        double[] outside = [3, -3, 0.5];
        double Loss(double[] w) => w.Zip(outside, (a, b) => (a - b) * (a - b)).Sum();
        for (int seed = 0; seed < 10; seed++)
        {
            var result = LoraHubSearch.Minimize(Loss, 3, new LoraHubOptions(Budget: 300, Seed: seed, L1: 0));
            Assert.All(result.Trace, t => Assert.All(t.Weights, v => Assert.InRange(v, -1.5, 1.5)));
            Assert.True(Math.Abs(result.Weights[0] - 1.5) < 0.05 && Math.Abs(result.Weights[1] + 1.5) < 0.05 && Math.Abs(result.Weights[2] - 0.5) < 0.05,
                $"seed {seed}: w = [{string.Join(", ", result.Weights)}]");
        }
    }

    [Fact]
    public void The_penalty_is_l1_times_the_mean_absolute_weight_and_the_search_is_deterministic_per_seed()
    {
        var a = LoraHubSearch.Minimize(Quadratic, 5, new LoraHubOptions(Seed: 3));
        var b = LoraHubSearch.Minimize(Quadratic, 5, new LoraHubOptions(Seed: 3));
        var c = LoraHubSearch.Minimize(Quadratic, 5, new LoraHubOptions(Seed: 4));
        Assert.Equal(a.Trace.Select(t => t.PenalisedLoss), b.Trace.Select(t => t.PenalisedLoss));
        Assert.Equal(a.Weights, b.Weights);
        Assert.NotEqual(a.Trace.Select(t => t.PenalisedLoss), c.Trace.Select(t => t.PenalisedLoss));
        Assert.All(a.Trace, t => Assert.Equal(t.Loss + 0.05 * t.Weights.Average(Math.Abs), t.PenalisedLoss, 12));
    }

    [Fact]
    public void Bad_options_are_refused()
    {
        Assert.Throws<ArgumentException>(() => LoraHubSearch.Minimize(Quadratic, 5, new LoraHubOptions(Init: 2)));
        Assert.Throws<ArgumentException>(() => LoraHubSearch.Minimize(Quadratic, 0));
        Assert.Throws<ArgumentException>(() => LoraHubSearch.Minimize(Quadratic, 5, new LoraHubOptions(Lower: 1, Upper: 1)));
        Assert.Throws<ArgumentException>(() => LoraHubSearch.Minimize(Quadratic, 5, new LoraHubOptions(Budget: 0)));
        Assert.Throws<InvalidOperationException>(() => LoraHubSearch.Minimize(_ => double.NaN, 2));
    }
}
