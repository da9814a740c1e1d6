using Amalgam.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Amalgam.Fitting;

/// <summary>
/// Settings for <see cref="SimplexFit"/>. <paramref name="InitNoise"/> &gt; 0 perturbs the uniform start by
/// N(0, InitNoise²) logits drawn from <paramref name="Seed"/>; 0 (the default) starts at exactly uniform weights
/// and the fit uses no randomness at all.
/// </summary>
public sealed record SimplexFitOptions(int Steps = 200, double LearningRate = 0.05, long Seed = 0, double InitNoise = 0,
    Device? Device = null, ScalarType DType = ScalarType.Float32)
{
    internal void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"simplex fit: Steps = {Steps}, must be at least 1");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw new ArgumentException($"simplex fit: LearningRate = {LearningRate}, must be positive");
        if (!(InitNoise >= 0) || !double.IsFinite(InitNoise)) throw new ArgumentException($"simplex fit: InitNoise = {InitNoise}, must be ≥ 0");
        if (DType is not (ScalarType.Float32 or ScalarType.Float64)) throw new ArgumentException($"simplex fit: DType = {DType}, must be Float32 or Float64");
    }
}

/// <summary>One optimisation step: the loss at the weights before the step.</summary>
public sealed record SimplexFitStep(int Step, double Loss);

/// <summary>
/// The fitted weights, one row per group (a [K] shape gives one row), each on the simplex; the loss before every
/// step and the loss at the returned weights.
/// </summary>
public sealed record SimplexFitResult(double[][] Weights, IReadOnlyList<double> LossHistory, double FinalLoss)
{
    /// <summary>The single row of a [K] fit.</summary>
    public double[] Vector => Weights.Length == 1 ? Weights[0] : throw new InvalidOperationException($"the fit has {Weights.Length} rows of weights, not one");
}

/// <summary>
/// Fits non-negative weights that sum to one along the last dimension (task-wise [K] or layer-wise [layers, K], as in
/// AdaMerging) by gradient descent: w = softmax(θ) along the last dimension, θ starts at zero (uniform weights), Adam
/// on θ. The loss is any differentiable TorchSharp function of w returning a scalar. Deterministic: no sampling
/// unless InitNoise &gt; 0, and then from the given seed.
/// </summary>
public static class SimplexFit
{
    public static SimplexFitResult Fit(long[] shape, Func<Tensor, Tensor> loss, SimplexFitOptions? options = null, IProgress<SimplexFitStep>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(loss);
        options ??= new SimplexFitOptions();
        options.Validate();
        if (shape.Length is < 1 or > 2 || shape.Any(s => s < 1)) throw new ArgumentException($"simplex fit: shape [{string.Join(", ", shape)}] must be [K] or [groups, K] with positive sizes", nameof(shape));
        var device = options.Device ?? CPU;
        using var grad = enable_grad();
        using var theta = new Parameter(Init(shape, options, device));
        using var optimizer = optim.Adam([theta], options.LearningRate);
        var history = new List<double>(options.Steps);
        for (int step = 0; step < options.Steps; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var value = Evaluate(loss, theta);
            value.backward();
            GcSafeStep.Step(optimizer);
            double l = value.to(ScalarType.Float64).item<double>();
            if (!double.IsFinite(l)) throw new InvalidOperationException($"simplex fit: the loss is {l} at step {step}");
            history.Add(l);
            progress?.Report(new SimplexFitStep(step, l));
        }
        using var final = NewDisposeScope();
        double finalLoss;
        using (no_grad()) finalLoss = Evaluate(loss, theta).to(ScalarType.Float64).item<double>();
        var w = nn.functional.softmax(theta.detach().to(ScalarType.Float64), -1).cpu().reshape(-1, shape[^1]);
        int rows = (int)w.shape[0], k = (int)shape[^1];
        var flat = w.data<double>().ToArray();
        return new SimplexFitResult(Enumerable.Range(0, rows).Select(r => flat.AsSpan(r * k, k).ToArray()).ToArray(), history, finalLoss);
    }

    static Tensor Init(long[] shape, SimplexFitOptions options, Device device)
    {
        if (options.InitNoise == 0) return zeros(shape, options.DType, device);
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)options.Seed);
        return (randn(shape, ScalarType.Float64, generator: generator) * options.InitNoise).to(options.DType, device).MoveToOuterDisposeScope();
    }

    static Tensor Evaluate(Func<Tensor, Tensor> loss, Tensor theta)
    {
        var value = loss(nn.functional.softmax(theta, -1));
        if (value is null || value.numel() != 1) throw new ArgumentException($"simplex fit: the loss must return a scalar, got [{string.Join(", ", value?.shape ?? [])}]");
        return value.reshape([]);
    }
}
