using static TorchSharp.torch;

namespace Amalgam.Tests.Routing;

/// <summary>Labelled Gaussian clusters: K unit-variance clusters in F dimensions around random means (scale
/// <c>spread</c>), all shifted by a common offset (as hidden states share a common direction).</summary>
static class SyntheticClusters
{
    public sealed record Sample(Tensor Features, int[] Labels);

    public static (Sample Train, Sample Test, Tensor Means) Draw(int seed, int experts = 4, int features = 16, int trainPerExpert = 100,
        int testPerExpert = 200, double spread = 1.0, double offset = 10.0)
    {
        var g = new Generator((ulong)(1000 + seed));
        var means = randn(new long[] { experts, features }, generator: g) * spread + offset;
        Sample Make(int perExpert)
        {
            var labels = Enumerable.Range(0, experts * perExpert).Select(i => i % experts).ToArray();
            var x = means.index_select(0, tensor(labels.Select(l => (long)l).ToArray())) + randn(new long[] { labels.Length, features }, generator: g);
            return new Sample(x, labels);
        }
        return (Make(trainPerExpert), Make(testPerExpert), means);
    }

    public static string[] Names(int experts) => Enumerable.Range(0, experts).Select(k => $"expert{k}").ToArray();

    public static double Accuracy(Tensor probabilities, int[] labels) =>
        probabilities.argmax(1).eq(tensor(labels.Select(l => (long)l).ToArray())).to(ScalarType.Float64).mean().item<double>();
}
