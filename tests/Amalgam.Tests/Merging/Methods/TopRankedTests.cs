using Amalgam.Merging.Parts;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging.Methods;

/// <summary>
/// The linear-time magnitude selection against the definition it replaces: the first k flat indices of the stable
/// descending sort of |x| (larger first, lower index first among equals), on inputs full of ties, small and
/// large enough for the sampled bracket.
/// </summary>
public class TopRankedTests
{
    static bool[] Reference(Tensor magnitude, long k)
    {
        var order = magnitude.reshape(-1).sort(dim: 0, descending: true, stable: true).Indices.narrow(0, 0, k).data<long>().ToArray();
        var mask = new bool[magnitude.numel()];
        foreach (var i in order) mask[i] = true;
        return mask;
    }

    public static TheoryData<int, int, double> Cases => new()
    {
        { 40, 3, 0.5 },            // few distinct values: most of the threshold's ties are cut
        { 1000, 7, 0.01 },
        { 1000, 1_000_000, 0.37 }, // almost no ties
        { 1_200_000, 50, 0.2 },    // above 16 × 65536: the sampled bracket path, with heavy ties
        { 1_200_000, 1_000_000, 0.9 },
        { 1_200_000, 1_000_000, 0.000_01 },
        { 1_200_000, 2, 0.999_999 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Keeps_exactly_the_first_k_of_the_stable_sort(int n, int distinct, double density)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(11);
        var magnitude = randint(0, distinct, [n], generator: g).to(ScalarType.Float32) / 7f;
        long k = Sparsifiers.KeepCount(density, n);
        var mask = Sparsifiers.TopRanked(magnitude, k);
        Assert.Equal(ScalarType.Bool, mask.dtype);
        Assert.Equal(Reference(magnitude, k), mask.data<bool>().ToArray());
    }

    [Fact]
    public void Ties_inside_the_sampled_bracket_follow_the_flat_order()
    {
        using var scope = NewDisposeScope();
        // one value repeated a million times around the threshold, a few larger ones scattered late
        var magnitude = ones(1_100_000);
        magnitude.index_put_(tensor(5f), tensor(new long[] { 1_099_999, 900_000, 3 }));
        var mask = Sparsifiers.TopRanked(magnitude, 10);
        Assert.Equal(Reference(magnitude, 10), mask.data<bool>().ToArray());
    }

    [Fact]
    public void Nan_magnitudes_rank_first_as_in_the_sort()
    {
        using var scope = NewDisposeScope();
        var magnitude = tensor(new float[] { 1, float.NaN, 3, 3, 0.5f, float.NaN });
        Assert.Equal(Reference(magnitude, 3), Sparsifiers.TopRanked(magnitude, 3).data<bool>().ToArray());
    }

    [Theory]
    [InlineData(0.3, 0.05)]
    [InlineData(0.9, 0.2)]
    [InlineData(0.3, 0.0)]
    public void Breadcrumbs_is_the_rank_window_of_the_stable_sort(double density, double gamma)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        var delta = (randint(-20, 20, [1_200_000], generator: g).to(ScalarType.Float32) / 3f).reshape(1200, 1000);
        long n = delta.numel(), target = Sparsifiers.KeepCount(density, n), top = (long)Math.Floor(gamma * n);
        if (n - target - top < 0) top = n - target;
        var order = delta.abs().reshape(-1).sort(dim: 0, descending: true, stable: true).Indices.narrow(0, top, target).data<long>().ToArray();
        var expected = new float[n];
        foreach (var i in order) expected[i] = 1;
        var mask = Sparsifiers.Breadcrumbs(delta, density, gamma);
        Assert.Equal(delta.shape, mask.shape);
        Assert.Equal(expected, mask.reshape(-1).data<float>().ToArray());
    }

    [Fact]
    public void Selection_leaves_no_tensors_behind()
    {
        using var outer = NewDisposeScope();
        var g = new Generator(5);
        var delta = randn([1200, 1000], generator: g);
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Sparsifiers.Magnitude(delta, 0.2).Dispose();
        Sparsifiers.Breadcrumbs(delta, 0.2, 0.01).Dispose();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
