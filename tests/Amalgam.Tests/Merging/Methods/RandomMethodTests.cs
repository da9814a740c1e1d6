using Amalgam.Merging;
using Amalgam.Merging.Parts;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging.Methods;

/// <summary>The random part of DARE and DELLA, statistically; the rescale rules exactly; draws only from inputs.Random.</summary>
public class RandomMethodTests
{
    static MergeParameters P(params (string, object)[] kv) => new(kv.ToDictionary(p => p.Item1, p => p.Item2));

    /// <summary>One model over a zero base, weight 1: the merge returns the rescaled, masked task vector itself.</summary>
    static Tensor MergeOne(string method, Tensor delta, double density, MergeParameters global, Generator g, string name = "w") =>
        MergeMethods.Get(method).Merge(new MergeTensorInputs(name, zeros_like(delta), [delta],
            [P(("weight", 1.0), ("density", density))], global, g));

    [Theory]
    [InlineData(0.3)]
    [InlineData(0.5)]
    [InlineData(0.9)]
    public void Dare_keeps_density_on_average_and_scales_kept_entries_by_exactly_one_over_density(double density)
    {
        using var scope = NewDisposeScope();
        var delta = randn([20, 25], generator: new Generator(3), dtype: ScalarType.Float64) + 0.01; // no zeros
        var g = new Generator(1234);
        const int trials = 200;
        long n = delta.numel(), kept = 0;
        var global = P(("rescale", "inverse_density"));
        for (int t = 0; t < trials; t++)
        {
            using var inner = NewDisposeScope();
            var r = MergeOne("dare_linear", delta, density, global, g);
            var keptMask = r != 0;
            kept += (long)keptMask.sum().ToDouble();
            // kept entries are exactly δ / d (same float64 division), dropped ones exactly 0
            Assert.True((r == where(keptMask, delta / density, zeros_like(delta))).all().ToBoolean());
        }
        double frac = kept / (double)(trials * n);
        double se = Math.Sqrt(density * (1 - density) / (trials * n));
        Assert.InRange(frac, density - 4 * se, density + 4 * se);
    }

    [Fact]
    public void Dare_l1_rescale_preserves_the_l1_norm()
    {
        using var scope = NewDisposeScope();
        var delta = randn([16, 16], generator: new Generator(5), dtype: ScalarType.Float64);
        var g = new Generator(99);
        for (int t = 0; t < 50; t++)
        {
            using var inner = NewDisposeScope();
            var r = MergeOne("dare_linear", delta, 0.4, MergeParameters.Empty, g); // mergekit default: l1
            Assert.Equal(delta.abs().sum().ToDouble(), r.abs().sum().ToDouble(), 9);
            var kept = r != 0;
            // one common factor for all kept entries
            var ratio = (r.masked_select(kept) / delta.masked_select(kept));
            Assert.True((ratio - ratio[0]).abs().max().ToDouble() < 1e-12);
        }
    }

    [Fact]
    public void Dare_l1_rescale_is_skipped_below_1e_minus_7()
    {
        using var scope = NewDisposeScope();
        var delta = full([10, 10], 5e-10, dtype: ScalarType.Float64); // ‖δ‖₁ = 5e-8 < 1e-7
        var r = MergeOne("dare_linear", delta, 0.5, MergeParameters.Empty, new Generator(1));
        var kept = r != 0;
        Assert.True((r.masked_select(kept) == 5e-10).all().ToBoolean());
    }

    [Fact]
    public void Della_keeps_large_entries_more_often_and_density_on_average()
    {
        using var scope = NewDisposeScope();
        var delta = arange(1, 11, dtype: ScalarType.Float64).reshape(1, 10); // rank = position
        var g = new Generator(42);
        const int trials = 2000;
        var counts = zeros(10, dtype: ScalarType.Float64);
        for (int t = 0; t < trials; t++)
        {
            using var inner = NewDisposeScope();
            var r = MergeOne("della_linear", delta, 0.5, P(("epsilon", 0.3)), g);
            counts.add_((r != 0).to(ScalarType.Float64).reshape(10));
        }
        var freq = (counts / trials).data<double>().ToArray();
        for (int i = 0; i < 10; i++)
        {
            double p = 0.2 + 0.6 * i / 9.0;
            double se = Math.Sqrt(p * (1 - p) / trials);
            Assert.InRange(freq[i], p - 4 * se, p + 4 * se);
        }
    }

    [Theory]
    [InlineData("dare_linear")]
    [InlineData("dare_ties")]
    [InlineData("della")]
    public void Draws_only_from_the_inputs_generator(string method)
    {
        using var scope = NewDisposeScope();
        var baseT = randn([8, 8], dtype: ScalarType.Float64, generator: new Generator(1));
        var models = Enumerable.Range(0, 3).Select(i => baseT + randn([8, 8], dtype: ScalarType.Float64, generator: new Generator((ulong)(10 + i)))).ToList();
        var pm = Enumerable.Range(0, 3).Select(_ => P(("weight", 1.0), ("density", 0.5))).ToList();
        Tensor Run(long seed)
        {
            manual_seed(Environment.TickCount); // the global generator must not matter
            return MergeMethods.Get(method).Merge(new MergeTensorInputs("w", baseT, models, pm, MergeParameters.Empty, new Generator((ulong)seed)));
        }
        Assert.True((Run(5) == Run(5)).all().ToBoolean());
        Assert.False((Run(5) == Run(6)).all().ToBoolean());
    }
}
