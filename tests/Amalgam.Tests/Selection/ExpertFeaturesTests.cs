using Amalgam.Experts;
using Amalgam.Selection;
using static TorchSharp.torch;

namespace Amalgam.Tests.Selection;

public class ExpertFeaturesTests
{
    static readonly (string Module, int Out, int In)[] Modules = [("model.layers.0.mlp.up_proj", 6, 5), ("model.layers.0.self_attn.q_proj", 4, 7), ("model.layers.1.self_attn.v_proj", 3, 3)];

    /// <summary>K random rank-2 adapters (scale α/r = 2); expert 3 lacks the second module, expert 4 the third.</summary>
    static List<LoraAdapter> RandomExperts(int k, int seed)
    {
        var g = new Generator((ulong)seed);
        var config = new LoraConfig { R = 2, LoraAlpha = 4 };
        return Enumerable.Range(0, k).Select(e => new LoraAdapter($"e{e}", config, Modules
            .Where((m, i) => !(e == 3 && i == 1) && !(e == 4 && i == 2))
            .ToDictionary(m => m.Module, m => (randn(new long[] { 2, m.In }, generator: g), randn(new long[] { m.Out, 2 }, generator: g))))).ToList();
    }

    /// <summary>The explicit [K, total] matrix: per module, each expert's dense ΔW in float64 with all but its top entries zeroed.</summary>
    static double[,] ExplicitSketch(IReadOnlyList<LoraAdapter> experts, double keep)
    {
        int total = Modules.Sum(m => m.Out * m.In);
        var x = new double[experts.Count, total];
        for (int e = 0; e < experts.Count; e++)
        {
            int offset = 0;
            foreach (var (module, o, i) in Modules.OrderBy(m => m.Module, StringComparer.Ordinal))
            {
                if (experts[e].Deltas.TryGetValue(module, out var d))
                {
                    // ΔW = s·B·A by loops in double
                    var a = d.A.to(ScalarType.Float64).data<double>().ToArray();
                    var b = d.B.to(ScalarType.Float64).data<double>().ToArray();
                    var w = new double[o * i];
                    for (int r = 0; r < o; r++)
                        for (int c = 0; c < i; c++)
                            w[r * i + c] = d.Scale * (b[r * 2] * a[c] + b[r * 2 + 1] * a[i + c]);
                    int kept = (int)Math.Ceiling(keep * w.Length - 1e-9);
                    double threshold = w.Select(Math.Abs).OrderByDescending(v => v).ElementAt(kept - 1);
                    for (int j = 0; j < w.Length; j++) x[e, offset + j] = Math.Abs(w[j]) >= threshold ? w[j] : 0;
                }
                offset += o * i;
            }
        }
        return x;
    }

    [Theory]
    [InlineData(1.0, 64)]
    [InlineData(0.2, 64)]
    [InlineData(0.35, 3)]
    public void Gram_features_equal_the_explicit_svd_features_up_to_column_signs(double keep, int dimensions)
    {
        var experts = RandomExperts(5, seed: 17);
        var features = ExpertFeatures.Mbc(experts, keep, dimensions);
        var x = ExplicitSketch(experts, keep);
        using var scope = NewDisposeScope();
        var xt = tensor(x.Cast<double>().ToArray(), new long[] { x.GetLength(0), x.GetLength(1) });
        var (u, s, _) = linalg.svd(xt, fullMatrices: false);
        int d = Math.Min(dimensions, 5);
        var reference = (u * s.unsqueeze(0)).narrow(1, 0, d);
        Assert.Equal(5, features.Length);
        Assert.All(features, row => Assert.Equal(d, row.Length));
        double tolerance = 1e-9 * s[0].item<double>();
        for (int c = 0; c < d; c++)
        {
            var col = Enumerable.Range(0, 5).Select(r => features[r][c]).ToArray();
            var refCol = Enumerable.Range(0, 5).Select(r => reference[r, c].item<double>()).ToArray();
            double sign = Math.Sign(col.Zip(refCol, (p, q) => p * q).Sum());
            for (int r = 0; r < 5; r++) Assert.True(Math.Abs(col[r] - sign * refCol[r]) < tolerance, $"column {c}, row {r}: {col[r]} vs {sign * refCol[r]}");
            Assert.True(col.MaxBy(Math.Abs) > 0); // sign convention: largest entry positive
        }
        foreach (var e in experts) e.Dispose();
    }

    [Fact]
    public void Full_rank_features_keep_every_inner_product_of_the_sketched_updates()
    {
        var experts = RandomExperts(5, seed: 3);
        var features = ExpertFeatures.Mbc(experts, 0.5);
        var x = ExplicitSketch(experts, 0.5);
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 5; b++)
            {
                double dot = Enumerable.Range(0, x.GetLength(1)).Sum(j => x[a, j] * x[b, j]);
                Assert.Equal(dot, features[a].Zip(features[b], (p, q) => p * q).Sum(), 1e-9 * Math.Max(1, Math.Abs(dot)));
            }
        foreach (var e in experts) e.Dispose();
    }

    [Fact]
    public void Keep_top_keeps_exactly_the_ceiling_of_the_fraction_by_magnitude()
    {
        using var v = tensor(new double[] { 0.1, -5, 3, -0.2, 4, 0 });
        using var kept = ExpertFeatures.KeepTop(v, 0.4); // ⌈2.4⌉ = 3 entries
        Assert.Equal(new double[] { 0, -5, 3, 0, 4, 0 }, kept.data<double>().ToArray());
    }

    [Fact]
    public void Bad_arguments_are_refused_with_the_field_named()
    {
        var experts = RandomExperts(2, seed: 1);
        Assert.Contains("keepFraction", Assert.Throws<ArgumentException>(() => ExpertFeatures.Mbc(experts, 0)).Message);
        Assert.Contains("experts is empty", Assert.Throws<ArgumentException>(() => ExpertFeatures.Mbc([])).Message);
        using var bad = zeros(3);
        Assert.Contains("[K, d]", Assert.Throws<ArgumentException>(() => ExpertFeatures.FromRows(bad)).Message);
        foreach (var e in experts) e.Dispose();
    }
}
