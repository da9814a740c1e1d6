using Amalgam.Merging.Parts;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging.Methods;

/// <summary>Exact counts and the documented tie-breaking of the deterministic sparsifiers.</summary>
public class SparsifierTests
{
    static long Count(Tensor m) => (long)m.sum().ToDouble();

    [Theory]
    [InlineData(48, 0.3)]
    [InlineData(48, 0.5)]
    [InlineData(37, 0.55)]
    [InlineData(1000, 0.01)]
    [InlineData(1000, 0.999)]
    [InlineData(10, 0.29)]   // 0.29 × 10 = 2.9 → 2
    [InlineData(100, 0.07)]  // 0.07 × 100 = 7.000000000000001 → 7
    [InlineData(5, 0.1)]     // int(0.5) = 0 → nothing kept
    public void Magnitude_keeps_exactly_int_density_times_numel(int n, double density)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(7);
        var x = randn([n], generator: g, dtype: ScalarType.Float64);
        var mask = Sparsifiers.Magnitude(x, density);
        long k = (long)(density * n);
        Assert.Equal(k, Count(mask));
        if (k > 0 && k < n)
        {
            // every kept magnitude ≥ every dropped one
            double minKept = x.abs().masked_select(mask.to(ScalarType.Bool)).min().ToDouble();
            double maxDropped = x.abs().masked_select(mask.to(ScalarType.Bool).logical_not()).max().ToDouble();
            Assert.True(minKept >= maxDropped);
        }
    }

    [Fact]
    public void Magnitude_ties_keep_the_lower_flat_indices()
    {
        using var scope = NewDisposeScope();
        // magnitudes: 5 at index 3; 2 at indices 0, 2, 5, 7 (signs mixed); 1 elsewhere
        var x = tensor(new double[] { 2, 1, -2, 5, 1, 2, -1, -2 });
        var mask = Sparsifiers.Magnitude(x, 0.375); // int(3) = 3: the 5, then the 2s at 0 and 2
        Assert.Equal(new double[] { 1, 0, 1, 1, 0, 0, 0, 0 }, mask.data<double>().ToArray());
    }

    [Fact]
    public void Magnitude_density_one_or_more_keeps_everything()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new double[] { 0, 1, -2, 3 });
        Assert.Equal(4, Count(Sparsifiers.Magnitude(x, 1.0)));
        Assert.Equal(4, Count(Sparsifiers.Magnitude(x, 1.5)));
    }

    [Theory]
    [InlineData(100, 0.3, 0.05)]   // drop top 5, keep the next 30
    [InlineData(100, 0.9, 0.2)]    // top 20 would overlap the 90: only 10 dropped
    [InlineData(100, 0.3, 0.0)]    // gamma 0 keeps the top 30 (mergekit zeroes the tensor here)
    [InlineData(37, 0.5, 0.1)]
    public void Breadcrumbs_keeps_exactly_int_density_times_numel_below_the_outliers(int n, double density, double gamma)
    {
        using var scope = NewDisposeScope();
        var x = randn([n], generator: new Generator(11), dtype: ScalarType.Float64);
        var mask = Sparsifiers.Breadcrumbs(x, density, gamma);
        long target = (long)(density * n);
        long top = Math.Min((long)(gamma * n), n - target);
        Assert.Equal(target, Count(mask));
        var order = x.abs().argsort(descending: true).data<long>().ToArray();
        var m = mask.data<double>().ToArray();
        for (int r = 0; r < n; r++)
            Assert.Equal(r >= top && r < top + target ? 1.0 : 0.0, m[order[r]]);
    }

    [Fact]
    public void Della_probabilities_span_density_plus_minus_epsilon_by_row_rank()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new double[,] { { 0.1, -3, 2, 0.5, -1 }, { 4, 3, 2, 1, 0 } });
        var p = Sparsifiers.DellaProbabilities(x, 0.5, 0.2).data<double>().ToArray();
        double[] expected = [0.3, 0.7, 0.6, 0.4, 0.5, 0.7, 0.6, 0.5, 0.4, 0.3];
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], p[i], 12);
        var ex = Assert.Throws<InvalidDataException>(() => Sparsifiers.DellaProbabilities(x, 0.5, 0.5));
        Assert.Contains("'epsilon'", ex.Message);
    }
}
