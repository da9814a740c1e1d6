using static TorchSharp.torch;

namespace Amalgam.Routing;

/// <summary>
/// A training-free example router: each expert's centroid is the mean feature of its training examples;
/// p = softmax(cos(x − c̄, cₖ − c̄) / T), where c̄ (the mean of the K centroids) is subtracted first because hidden
/// states share a large common direction that would otherwise make every cosine close to 1. Tensors on the CPU.
/// </summary>
public sealed class CentroidRouter : IExampleRouter, IDisposable
{
    public const string Kind = "centroid";
    /// <summary>Default softmax temperature on cosine similarities (in [−1, 1]): a 0.1 cosine lead gives e² ≈ 7.4× the weight.</summary>
    public const double DefaultTemperature = 0.05;

    private readonly Tensor centroids, center;

    CentroidRouter(IReadOnlyList<string> experts, Tensor centroids, double temperature)
    {
        if (!(temperature > 0) || double.IsInfinity(temperature)) throw new ArgumentException($"temperature: must be positive, got {temperature}");
        Experts = experts.ToList();
        Temperature = temperature;
        this.centroids = centroids;
        center = centroids.mean([0]).DetachFromDisposeScope();
    }

    public IReadOnlyList<string> Experts { get; }
    public double Temperature { get; }
    public long FeatureDim => centroids.shape[1];

    /// <summary>The raw centroids [K, F] (a view owned by the router).</summary>
    public Tensor Centroids => centroids;

    /// <summary>Builds the centroids from labelled features [N, F]; every expert needs at least one example.</summary>
    public static CentroidRouter Build(Tensor features, IReadOnlyList<int> labels, IReadOnlyList<string> expertNames, double temperature = DefaultTemperature)
    {
        RouterFiles.CheckLabelled(features, labels, expertNames);
        var counts = new long[expertNames.Count];
        foreach (var l in labels) counts[l]++;
        int empty = Array.IndexOf(counts, 0L);
        if (empty >= 0) throw new ArgumentException($"labels: expert '{expertNames[empty]}' has no examples");
        using var scope = NewDisposeScope();
        var x = features.detach().to(ScalarType.Float64).cpu();
        var sums = zeros(new long[] { expertNames.Count, x.shape[1] }, ScalarType.Float64);
        sums.index_add_(0, tensor(labels.Select(l => (long)l).ToArray()), x, 1);
        var c = (sums / tensor(counts).to(ScalarType.Float64).unsqueeze(1)).to(ScalarType.Float32);
        return new CentroidRouter(expertNames, c.DetachFromDisposeScope(), temperature);
    }

    public Tensor Probabilities(Tensor features)
    {
        RouterFiles.CheckFeatures(features, FeatureDim);
        using var inference = inference_mode();
        using var scope = NewDisposeScope();
        var x = nn.functional.normalize(features.to(ScalarType.Float32).cpu() - center, dim: 1);
        var c = nn.functional.normalize(centroids - center, dim: 1);
        return nn.functional.softmax(x.matmul(c.T) / Temperature, 1).MoveToOuterDisposeScope();
    }

    /// <summary>Writes router.json and router.safetensors into <paramref name="dir"/>, atomically.</summary>
    public void Save(string dir) =>
        RouterFiles.Write(dir, new RouterDescription { Kind = Kind, Experts = Experts.ToList(), FeatureDim = FeatureDim, Temperature = Temperature },
            new Dictionary<string, Tensor> { ["centroids"] = centroids });

    /// <summary>Reads a folder written by <see cref="Save"/>; a bad file gives a one-line error naming it and the field.</summary>
    public static CentroidRouter Load(string dir)
    {
        var d = RouterFiles.ReadDescription(dir, Kind);
        string json = Path.Combine(dir, RouterFiles.DescriptionFile);
        double temperature = d.Temperature ?? throw new InvalidDataException($"{json}: temperature: missing");
        if (!(temperature > 0) || double.IsInfinity(temperature)) throw new InvalidDataException($"{json}: temperature: must be positive, got {temperature}");
        var t = RouterFiles.ReadTensors(dir, new Dictionary<string, long[]> { ["centroids"] = [d.Experts.Count, d.FeatureDim] });
        return new CentroidRouter(d.Experts, t["centroids"], temperature);
    }

    public void Dispose()
    {
        centroids.Dispose();
        center.Dispose();
    }
}
