using Amalgam.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Amalgam.Routing;

/// <summary>
/// Twin-Merging's router: an MLP over standardised example features (z = (x − mean) / std, both stored in the router)
/// with ReLU hidden layers and a softmax over the K experts, trained with cross-entropy on examples labelled with
/// the expert of their task. Tensors live on the CPU; features on any device are copied there.
/// </summary>
public sealed class LearnedRouter : IExampleRouter, IDisposable
{
    public const string Kind = "learned";

    private readonly Tensor mean, std;
    private readonly (Tensor Weight, Tensor Bias)[] layers;

    LearnedRouter(IReadOnlyList<string> experts, LearnedRouterOptions options, Tensor mean, Tensor std, (Tensor, Tensor)[] layers)
    {
        Experts = experts.ToList();
        Options = options;
        this.mean = mean;
        this.std = std;
        this.layers = layers;
    }

    public IReadOnlyList<string> Experts { get; }
    public LearnedRouterOptions Options { get; }
    public long FeatureDim => mean.shape[0];

    public Tensor Probabilities(Tensor features)
    {
        RouterFiles.CheckFeatures(features, FeatureDim);
        using var inference = inference_mode();
        using var scope = NewDisposeScope();
        var z = (features.to(ScalarType.Float32).cpu() - mean) / std;
        return nn.functional.softmax(Forward(layers, z, 0, null), 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Trains a router on <paramref name="features"/> [N, F] labelled with expert indices. Deterministic for a seed:
    /// the seed draws the initial weights (PyTorch's default Linear initialisation, U(±1/√fan_in)), the dropout masks
    /// and the batch order (shuffled epochs).
    /// </summary>
    public static (LearnedRouter Router, RouterTrainingLog Log) Train(Tensor features, IReadOnlyList<int> labels, IReadOnlyList<string> expertNames,
        LearnedRouterOptions? options = null, int seed = 0)
    {
        options ??= new LearnedRouterOptions();
        options.Validate();
        RouterFiles.CheckLabelled(features, labels, expertNames);
        using var scope = NewDisposeScope();
        // A clone made outside inference mode: features computed under it could not be saved for backward.
        var x = features.detach().to(ScalarType.Float32).cpu().clone();
        var mean = x.mean([0]);
        var spread = x.std(0, unbiased: false);
        var std = where(spread > 1e-6, spread, ones_like(spread)); // constant features pass through unscaled
        var z = (x - mean) / std;
        var y = tensor(labels.Select(l => (long)l).ToArray());

        var generator = new Generator((ulong)seed);
        var widths = new List<long> { x.shape[1] };
        widths.AddRange(Enumerable.Repeat((long)options.HiddenWidth, options.HiddenLayers));
        widths.Add(expertNames.Count);
        var parameters = new List<Parameter>();
        var trained = new (Tensor, Tensor)[widths.Count - 1];
        for (int i = 0; i < trained.Length; i++)
        {
            double bound = 1 / Math.Sqrt(widths[i]);
            var w = new Parameter((rand(new[] { widths[i + 1], widths[i] }, generator: generator) * 2 - 1) * bound);
            var b = new Parameter((rand(new[] { widths[i + 1] }, generator: generator) * 2 - 1) * bound);
            parameters.Add(w);
            parameters.Add(b);
            trained[i] = (w, b);
        }

        using var optimizer = optim.AdamW(parameters, options.LearningRate, 0.9, 0.999, 1e-8, options.WeightDecay);
        var rng = new Random(seed);
        var order = new List<int>();
        var steps = new List<RouterTrainingStep>(options.Steps);
        for (int step = 0; step < options.Steps; step++)
        {
            using var stepScope = NewDisposeScope();
            var batch = new long[options.BatchSize];
            for (int i = 0; i < batch.Length; i++)
            {
                if (order.Count == 0) order.AddRange(Enumerable.Range(0, labels.Count).OrderBy(_ => rng.Next()));
                batch[i] = order[^1];
                order.RemoveAt(order.Count - 1);
            }
            var index = tensor(batch);
            var target = y.index_select(0, index);
            optimizer.zero_grad();
            var logits = Forward(trained, z.index_select(0, index), options.Dropout, generator);
            var loss = nn.functional.cross_entropy(logits, target);
            double value = loss.item<float>();
            if (!double.IsFinite(value)) throw new InvalidOperationException($"router training diverged: loss is {value} at step {step + 1}; lower the learning rate");
            loss.backward();
            GcSafeStep.Step(optimizer);
            double accuracy = logits.argmax(1).eq(target).to(ScalarType.Float32).mean().item<float>();
            steps.Add(new RouterTrainingStep(step + 1, value, accuracy));
        }

        var kept = trained.Select(l => (l.Item1.detach().clone().DetachFromDisposeScope(), l.Item2.detach().clone().DetachFromDisposeScope())).ToArray();
        var router = new LearnedRouter(expertNames, options, mean.DetachFromDisposeScope(), std.DetachFromDisposeScope(), kept);
        double trainAccuracy;
        using (no_grad())
            trainAccuracy = Forward(kept, z, 0, null).argmax(1).eq(y).to(ScalarType.Float32).mean().item<float>();
        return (router, new RouterTrainingLog(steps, trainAccuracy));
    }

    /// <summary>Logits of the MLP: ReLU (and, in training, inverted dropout) after every layer but the last.</summary>
    static Tensor Forward(IReadOnlyList<(Tensor Weight, Tensor Bias)> layers, Tensor z, double dropout, Generator? generator)
    {
        var h = z;
        for (int i = 0; i < layers.Count; i++)
        {
            h = nn.functional.linear(h, layers[i].Weight, layers[i].Bias);
            if (i == layers.Count - 1) break;
            h = nn.functional.relu(h);
            if (dropout > 0 && generator is not null)
                h = h * (rand(h.shape, generator: generator) >= dropout).to(h.dtype) / (1 - dropout);
        }
        return h;
    }

    static string WeightName(int layer) => $"layers.{layer}.weight";
    static string BiasName(int layer) => $"layers.{layer}.bias";

    /// <summary>Writes router.json and router.safetensors into <paramref name="dir"/>, atomically.</summary>
    public void Save(string dir)
    {
        var tensors = new Dictionary<string, Tensor> { ["mean"] = mean, ["std"] = std };
        for (int i = 0; i < layers.Length; i++)
        {
            tensors[WeightName(i)] = layers[i].Weight;
            tensors[BiasName(i)] = layers[i].Bias;
        }
        RouterFiles.Write(dir, new RouterDescription { Kind = Kind, Experts = Experts.ToList(), FeatureDim = FeatureDim, Options = Options }, tensors);
    }

    /// <summary>Reads a folder written by <see cref="Save"/>; a bad file gives a one-line error naming it and the field.</summary>
    public static LearnedRouter Load(string dir)
    {
        var d = RouterFiles.ReadDescription(dir, Kind);
        string json = Path.Combine(dir, RouterFiles.DescriptionFile);
        var options = d.Options ?? throw new InvalidDataException($"{json}: options: missing (a learned router records its options)");
        try { options.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{json}: options.{e.Message}"); }
        var widths = new List<long> { d.FeatureDim };
        widths.AddRange(Enumerable.Repeat((long)options.HiddenWidth, options.HiddenLayers));
        widths.Add(d.Experts.Count);
        var expected = new Dictionary<string, long[]> { ["mean"] = [d.FeatureDim], ["std"] = [d.FeatureDim] };
        for (int i = 0; i < widths.Count - 1; i++)
        {
            expected[WeightName(i)] = [widths[i + 1], widths[i]];
            expected[BiasName(i)] = [widths[i + 1]];
        }
        var t = RouterFiles.ReadTensors(dir, expected);
        using var scope = NewDisposeScope();
        if (!(t["std"] > 0).all().item<bool>())
        {
            foreach (var x in t.Values) x.Dispose();
            throw new InvalidDataException($"{Path.Combine(dir, RouterFiles.TensorsFile)}: tensor 'std' has a value that is not positive");
        }
        var layers = Enumerable.Range(0, widths.Count - 1).Select(i => (t[WeightName(i)], t[BiasName(i)])).ToArray();
        return new LearnedRouter(d.Experts, options, t["mean"], t["std"], layers);
    }

    public void Dispose()
    {
        mean.Dispose();
        std.Dispose();
        foreach (var (w, b) in layers) { w.Dispose(); b.Dispose(); }
    }
}
