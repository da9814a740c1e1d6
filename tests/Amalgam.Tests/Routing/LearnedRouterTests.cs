using Amalgam.Routing;
using static TorchSharp.torch;

namespace Amalgam.Tests.Routing;

public class LearnedRouterTests
{
    static readonly LearnedRouterOptions Quick = new() { Steps = 150 };

    [Fact]
    public void Reaches_95_percent_on_held_out_samples_of_separable_clusters_for_every_seed()
    {
        for (int seed = 0; seed < 5; seed++)
        {
            using var scope = NewDisposeScope();
            var (train, test, _) = SyntheticClusters.Draw(seed, spread: 1.5);
            var (router, log) = LearnedRouter.Train(train.Features, train.Labels, SyntheticClusters.Names(4), Quick, seed);
            using var _r = router;
            double accuracy = SyntheticClusters.Accuracy(router.Probabilities(test.Features), test.Labels);
            Assert.True(accuracy >= 0.95, $"seed {seed}: held-out accuracy {accuracy:P1}");
            Assert.True(log.TrainAccuracy >= 0.95, $"seed {seed}: training accuracy {log.TrainAccuracy:P1}");
            Assert.Equal(Quick.Steps, log.Steps.Count);
            Assert.True(log.FinalLoss < log.Steps[0].Loss / 4, $"seed {seed}: loss {log.Steps[0].Loss:G3} → {log.FinalLoss:G3}");
        }
    }

    [Fact]
    public void Probabilities_are_rows_summing_to_one_in_expert_order()
    {
        using var scope = NewDisposeScope();
        var (train, test, _) = SyntheticClusters.Draw(7, experts: 3);
        var (router, _) = LearnedRouter.Train(train.Features, train.Labels, SyntheticClusters.Names(3), Quick, 1);
        using var _r = router;
        var p = router.Probabilities(test.Features);
        Assert.Equal(new long[] { test.Labels.Length, 3 }, p.shape);
        Assert.Equal(ScalarType.Float32, p.dtype);
        Assert.True((p.sum(1) - 1).abs().max().item<float>() < 1e-5);
        Assert.Equal(SyntheticClusters.Names(3), router.Experts);
    }

    [Fact]
    public void Training_is_deterministic_for_a_seed_and_differs_across_seeds()
    {
        using var scope = NewDisposeScope();
        var (train, test, _) = SyntheticClusters.Draw(2);
        var options = Quick with { Dropout = 0.1 };
        var (a, logA) = LearnedRouter.Train(train.Features, train.Labels, SyntheticClusters.Names(4), options, 5);
        var (b, logB) = LearnedRouter.Train(train.Features, train.Labels, SyntheticClusters.Names(4), options, 5);
        var (c, _) = LearnedRouter.Train(train.Features, train.Labels, SyntheticClusters.Names(4), options, 6);
        using var _a = a; using var _b = b; using var _c = c;
        Assert.True(a.Probabilities(test.Features).equal(b.Probabilities(test.Features)).all().item<bool>());
        Assert.Equal(logA.Steps.Select(s => s.Loss), logB.Steps.Select(s => s.Loss));
        Assert.False(a.Probabilities(test.Features).equal(c.Probabilities(test.Features)).all().item<bool>());
    }

    [Fact]
    public void Save_then_load_gives_identical_probabilities()
    {
        using var dir = new TestData.TempDir();
        using var scope = NewDisposeScope();
        var (train, test, _) = SyntheticClusters.Draw(3);
        var options = Quick with { HiddenLayers = 1, HiddenWidth = 32 };
        var (router, _) = LearnedRouter.Train(train.Features, train.Labels, SyntheticClusters.Names(4), options, 0);
        using var _r = router;
        router.Save(dir["router"]);
        Assert.Equal(new[] { "router.json", "router.safetensors" }, Directory.GetFiles(dir["router"]).Select(Path.GetFileName).Order());
        using var loaded = LearnedRouter.Load(dir["router"]);
        Assert.Equal(router.Experts, loaded.Experts);
        Assert.Equal(options, loaded.Options);
        Assert.True(router.Probabilities(test.Features).equal(loaded.Probabilities(test.Features)).all().item<bool>());
        var any = RouterFiles.Load(dir["router"]);
        Assert.IsType<LearnedRouter>(any);
        ((IDisposable)any).Dispose();
    }

    [Fact]
    public void Bad_inputs_are_refused_naming_the_field()
    {
        using var scope = NewDisposeScope();
        var x = randn(6, 3);
        var names = SyntheticClusters.Names(2);
        Assert.Contains("labels[2] = 2", Assert.Throws<ArgumentException>(() => LearnedRouter.Train(x, [0, 1, 2, 0, 1, 0], names)).Message);
        Assert.Contains("5 labels for 6", Assert.Throws<ArgumentException>(() => LearnedRouter.Train(x, [0, 1, 1, 0, 1], names)).Message);
        Assert.Contains("dropout", Assert.Throws<ArgumentException>(() => LearnedRouter.Train(x, [0, 1, 1, 0, 1, 0], names, new() { Dropout = 1 })).Message);
        var (router, _) = LearnedRouter.Train(x, [0, 1, 1, 0, 1, 0], names, new() { Steps = 2 });
        using var _r = router;
        Assert.Contains("[N, 3]", Assert.Throws<ArgumentException>(() => router.Probabilities(randn(2, 4))).Message);
    }
}
