using Amalgam.Mixing;
using Amalgam.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Models;

/// <summary>The factored per-row mixture against the dense float64 reference Σₖ wₖ·sₖ·(BₖAₖ)·x.</summary>
public class StackedFactorsTests
{
    const long In = 12, Out = 10, Batch = 5, Positions = 4;

    static List<LowRankDelta?> Experts(Generator g)
    {
        // Ranks differ, one expert does not touch the layer, scales differ.
        return
        [
            new LowRankDelta(randn(3, In, generator: g), randn(Out, 3, generator: g), 0.5),
            null,
            new LowRankDelta(randn(5, In, generator: g), randn(Out, 5, generator: g), 2.0),
            new LowRankDelta(randn(1, In, generator: g), randn(Out, 1, generator: g), 1.25),
        ];
    }

    static Tensor Reference(List<LowRankDelta?> experts, Tensor x, Tensor weights)
    {
        var w = (weights.dim() == 2 ? weights.unsqueeze(1) : weights).to(ScalarType.Float64);
        var y = zeros(new long[] { Batch, Positions, Out }, ScalarType.Float64);
        for (int k = 0; k < experts.Count; k++)
            if (experts[k] is { } d)
            {
                var dense = d.Dense(ScalarType.Float64);                                   // [out, in]
                y += nn.functional.linear(x.to(ScalarType.Float64), dense) * w.select(-1, k).unsqueeze(-1);
            }
        return y;
    }

    public static TheoryData<string> WeightKinds() => new() { "dense-per-example", "top1-per-example", "top2-per-token", "zeros" };

    static Tensor Weights(string kind, Generator g) => kind switch
    {
        "dense-per-example" => rand(Batch, 4, generator: g),
        "top1-per-example" => nn.functional.one_hot(tensor(new long[] { 0, 2, 3, 1, 2 }), 4).to(ScalarType.Float32),
        "top2-per-token" => TopTwo(rand(new long[] { Batch, Positions, 4 }, generator: g)),
        _ => zeros(Batch, 4),
    };

    static Tensor TopTwo(Tensor scores)
    {
        var (values, indices) = scores.topk(2, dim: -1);
        return zeros_like(scores).scatter_(-1, indices, nn.functional.softmax(values, -1));
    }

    [Theory]
    [MemberData(nameof(WeightKinds))]
    public void Dense_and_sparse_paths_equal_the_dense_reference(string kind)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(7);
        var experts = Experts(g);
        var x = randn(new long[] { Batch, Positions, In }, generator: g);
        var w = Weights(kind, g);
        using var stacked = new StackedFactors(experts, In, Out);
        Assert.Equal(9, stacked.TotalRank);
        var expected = Reference(experts, x, w);
        var y = randn(new long[] { Batch, Positions, Out }, generator: g);
        var paths = new List<(string, Tensor)> { ("dense", stacked.Dense(x, w)), ("sparse", stacked.Sparse(x, w)), ("y + chosen path", stacked.AddTo(y, x, w) - y) };
        if (w.dim() == 2) paths.Add(("compact", stacked.Compact(x, w)));
        foreach (var (name, actual) in paths)
        {
            Assert.Equal(new long[] { Batch, Positions, Out }, actual.shape);
            double diff = (actual.to(ScalarType.Float64) - expected).abs().max().item<double>();
            Assert.True(diff < 1e-4, $"{name} ({kind}): max |Δ| = {diff}");
        }
    }

    [Fact]
    public void The_sparse_path_touches_only_the_experts_a_row_uses()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        var experts = Experts(g);
        // Expert 3's factors are NaN: any row that touched them would come out NaN.
        experts[3] = new LowRankDelta(full(1, In, double.NaN), full(Out, 1, double.NaN), 1.0);
        using var stacked = new StackedFactors(experts, In, Out);
        var x = randn(new long[] { Batch, Positions, In }, generator: g);
        var w = nn.functional.one_hot(tensor(new long[] { 0, 2, 0, 2, 1 }), 4).to(ScalarType.Float32); // nobody uses expert 3
        Assert.True(isfinite(stacked.Sparse(x, w)).all().item<bool>());
        Assert.False(isfinite(stacked.Dense(x, w)).all().item<bool>()); // the dense path computes every expert
    }

    [Fact]
    public void Fixed_top1_and_top2_per_example_weights_take_the_fused_per_row_path_and_equal_the_reference()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(11);
        // 8 experts of rank 2 (so a top-2 row keeps a quarter of the rank); expert 7's factors are NaN and no row
        // uses it: only a path that drops unused experts stays finite.
        var experts = Enumerable.Range(0, 8).Select(k => (LowRankDelta?)(k == 7
            ? new LowRankDelta(full(2, In, double.NaN), full(Out, 2, double.NaN), 1.0)
            : new LowRankDelta(randn(2, In, generator: g), randn(Out, 2, generator: g), 0.5 + k))).ToList();
        using var stacked = new StackedFactors(experts, In, Out);
        var x = randn(new long[] { Batch, Positions, In }, generator: g);
        var y = randn(new long[] { Batch, Positions, Out }, generator: g);
        var top1 = nn.functional.one_hot(tensor(new long[] { 0, 6, 2, 1, 0 }), 8).to(ScalarType.Float32);
        var top2 = zeros(Batch, 8);
        foreach (var (r, k, v) in new[] { (0, 0, 0.3f), (0, 2, 0.7f), (1, 6, 1f), (2, 4, 0.5f), (2, 5, 0.5f), (3, 1, 1f), (4, 3, 0.25f), (4, 6, 0.75f) })
            top2[r, k] = v;
        foreach (var w in new[] { top1, top2 })
            for (int repeat = 0; repeat < 2; repeat++) // the second call reuses the cached per-row factors
            {
                var actual = stacked.AddTo(y, x, w);
                Assert.True(isfinite(actual).all().item<bool>());
                var expected = zeros(new long[] { Batch, Positions, Out }, ScalarType.Float64);
                for (int k = 0; k < 7; k++)
                    expected += nn.functional.linear(x.to(ScalarType.Float64), experts[k]!.Dense(ScalarType.Float64)) * w.select(1, k).to(ScalarType.Float64).view(Batch, 1, 1);
                double diff = (actual.to(ScalarType.Float64) - y - expected).abs().max().item<double>();
                Assert.True(diff < 1e-4, $"max |Δ| = {diff}");
            }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Gradients_flow_to_the_weights_and_equal_the_dense_reference(bool perToken)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(5);
        var experts = Experts(g);
        using var stacked = new StackedFactors(experts, In, Out);
        var x = randn(new long[] { Batch, Positions, In }, generator: g);
        var y = randn(new long[] { Batch, Positions, Out }, generator: g);
        var probe = randn(new long[] { Batch, Positions, Out }, generator: g);
        // One-hot weights: a forward that compacted them away would give the zero weights no gradient.
        var oneHot = nn.functional.one_hot(tensor(new long[] { 0, 2, 3, 1, 2 }), 4).to(ScalarType.Float32);
        var w = (perToken ? oneHot.unsqueeze(1).expand(Batch, Positions, 4).contiguous() : oneHot).requires_grad_(true);
        for (int step = 0; step < 2; step++) // twice on the same tensor: nothing may be cached across backwards
        {
            w.grad?.zero_();
            (stacked.AddTo(y, x, w) * probe).sum().backward();
            // dL/dw[i, (t,) k] = Σ probe ⊙ sₖBₖAₖx, in float64.
            var expected = zeros(perToken ? new long[] { Batch, Positions, 4 } : new long[] { Batch, 4 }, ScalarType.Float64);
            for (int k = 0; k < 4; k++)
                if (experts[k] is { } d)
                {
                    var contribution = (nn.functional.linear(x.to(ScalarType.Float64), d.Dense(ScalarType.Float64)) * probe.to(ScalarType.Float64)).sum(-1);
                    expected.select(-1, k).copy_(perToken ? contribution : contribution.sum(1));
                }
            double diff = (w.grad!.to(ScalarType.Float64) - expected).abs().max().item<double>();
            Assert.True(diff < 1e-3, $"step {step}: max |Δgrad| = {diff}");
            Assert.NotEqual(0.0, w.grad!.select(-1, 3).abs().sum().item<float>()); // a zero weight still gets its gradient
        }
    }

    [Fact]
    public void Mismatched_weights_are_refused()
    {
        using var scope = NewDisposeScope();
        using var stacked = new StackedFactors(Experts(new Generator(1)), In, Out);
        var x = randn(Batch, Positions, In);
        Assert.Throws<ArgumentException>(() => stacked.Dense(x, ones(Batch, 3)));
        Assert.Throws<ArgumentException>(() => stacked.Sparse(x, ones(Batch + 1, 4)));
    }
}
