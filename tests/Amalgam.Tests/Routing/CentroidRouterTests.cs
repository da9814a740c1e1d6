using Amalgam.Routing;
using static TorchSharp.torch;

namespace Amalgam.Tests.Routing;

public class CentroidRouterTests
{
    [Fact]
    public void Recovers_planted_clusters_for_every_seed()
    {
        for (int seed = 0; seed < 5; seed++)
        {
            using var scope = NewDisposeScope();
            var (train, test, means) = SyntheticClusters.Draw(seed, spread: 2.0);
            using var router = CentroidRouter.Build(train.Features, train.Labels, SyntheticClusters.Names(4));
            double accuracy = SyntheticClusters.Accuracy(router.Probabilities(test.Features), test.Labels);
            Assert.True(accuracy >= 0.95, $"seed {seed}: held-out accuracy {accuracy:P1}");
            // 100 unit-variance samples per centroid: each coordinate within 5 standard errors (0.5) of the planted mean.
            Assert.True((router.Centroids - means).abs().max().item<float>() < 0.5);
        }
    }

    [Fact]
    public void Centroids_and_probabilities_match_a_direct_float64_computation()
    {
        using var scope = NewDisposeScope();
        var (train, test, _) = SyntheticClusters.Draw(11, experts: 3, features: 5, trainPerExpert: 7, testPerExpert: 2);
        using var router = CentroidRouter.Build(train.Features, train.Labels, SyntheticClusters.Names(3), temperature: 0.2);
        var x = train.Features.to(ScalarType.Float64).data<double>().ToArray();
        var c = new double[3, 5];
        for (int k = 0; k < 3; k++)
            for (int f = 0; f < 5; f++)
            {
                var rows = Enumerable.Range(0, train.Labels.Length).Where(i => train.Labels[i] == k).ToList();
                c[k, f] = rows.Average(i => x[i * 5 + f]);
            }
        var got = router.Centroids.to(ScalarType.Float64).data<double>().ToArray();
        for (int k = 0; k < 3; k++)
            for (int f = 0; f < 5; f++) Assert.Equal(c[k, f], got[k * 5 + f], 1e-4);

        var t = test.Features.to(ScalarType.Float64).data<double>().ToArray();
        var p = router.Probabilities(test.Features).to(ScalarType.Float64).data<double>().ToArray();
        var center = Enumerable.Range(0, 5).Select(f => (c[0, f] + c[1, f] + c[2, f]) / 3).ToArray();
        for (int n = 0; n < test.Labels.Length; n++)
        {
            var xc = Enumerable.Range(0, 5).Select(f => t[n * 5 + f] - center[f]).ToArray();
            var cos = Enumerable.Range(0, 3).Select(k =>
            {
                var ck = Enumerable.Range(0, 5).Select(f => c[k, f] - center[f]).ToArray();
                return xc.Zip(ck, (a, b) => a * b).Sum() / Math.Sqrt(xc.Sum(v => v * v) * ck.Sum(v => v * v));
            }).ToArray();
            var e = cos.Select(v => Math.Exp(v / 0.2)).ToArray();
            for (int k = 0; k < 3; k++) Assert.Equal(e[k] / e.Sum(), p[n * 3 + k], 1e-5);
        }
    }

    [Fact]
    public void Save_then_load_gives_identical_probabilities()
    {
        using var dir = new TestData.TempDir();
        using var scope = NewDisposeScope();
        var (train, test, _) = SyntheticClusters.Draw(4);
        using var router = CentroidRouter.Build(train.Features, train.Labels, SyntheticClusters.Names(4), temperature: 0.1);
        router.Save(dir["c"]);
        var loaded = (CentroidRouter)RouterFiles.Load(dir["c"]);
        using var _l = loaded;
        Assert.Equal(0.1, loaded.Temperature);
        Assert.True(router.Probabilities(test.Features).equal(loaded.Probabilities(test.Features)).all().item<bool>());
    }

    [Fact]
    public void An_expert_without_examples_is_refused_by_name()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => CentroidRouter.Build(randn(3, 2), [0, 0, 2], ["a", "b", "c"]));
        Assert.Contains("'b'", e.Message);
    }
}
