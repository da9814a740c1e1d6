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

/// <summary>One part of a loss cut into parts: its share <paramref name="Weight"/> of the whole, and the part's loss of w.</summary>
public sealed record LossPart(double Weight, Func<Tensor, Tensor> Loss);

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
        ArgumentNullException.ThrowIfNull(loss);
        return Fit(shape, [new LossPart(1, loss)], options, progress);
    }

    /// <summary>
    /// The fit of Σₚ cₚ·lossₚ(w) (a batch cut into parts, cₚ each part's share of the mean): each step evaluates the
    /// parts side by side on the <see cref="Runtime.TorchWorkers"/>, each on its own copy of w with its own backward,
    /// and feeds Σₚ cₚ·∂lossₚ/∂w back through the softmax, which is the gradient of the whole by the chain rule.
    /// </summary>
    public static SimplexFitResult Fit(long[] shape, IReadOnlyList<LossPart> parts, SimplexFitOptions? options = null, IProgress<SimplexFitStep>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0 || parts.Any(p => p.Loss is null || !(p.Weight >= 0) || !double.IsFinite(p.Weight)))
            throw new ArgumentException("simplex fit: needs at least one loss part, each with a finite non-negative weight", nameof(parts));
        var loss = parts.Count == 1 ? Scaled(parts[0]) : null;
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
            Tensor value;
            if (loss is not null)
            {
                value = Evaluate(loss, theta);
                value.backward();
            }
            else
                value = Backward(parts, theta);
            GcSafeStep.Step(optimizer);
            double l = value.to(ScalarType.Float64).item<double>();
            if (!double.IsFinite(l)) throw new InvalidOperationException($"simplex fit: the loss is {l} at step {step}");
            history.Add(l);
            progress?.Report(new SimplexFitStep(step, l));
        }
        using var final = NewDisposeScope();
        double finalLoss;
        using (no_grad()) finalLoss = loss is not null ? Evaluate(loss, theta).to(ScalarType.Float64).item<double>() : Total(parts, theta);
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

    static Func<Tensor, Tensor> Scaled(LossPart part) => part.Weight == 1 ? part.Loss : w => part.Loss(w) * part.Weight;

    /// <summary>Σₚ cₚ·lossₚ at w = softmax(θ), its gradient accumulated into θ; returns the total (no graph).</summary>
    static Tensor Backward(IReadOnlyList<LossPart> parts, Tensor theta)
    {
        var w = nn.functional.softmax(theta, -1);
        using var detached = w.detach();
        var pieces = Runtime.TorchWorkers.Map(parts, part =>
        {
            using var grad = enable_grad();
            using var scope = NewDisposeScope();
            var copy = detached.clone().requires_grad_(true);
            var value = Checked(part.Loss(copy));
            value.backward();
            return (Loss: value.to(ScalarType.Float64).item<double>(), Grad: copy.grad!.clone().DetachFromDisposeScope());
        });
        var total = zeros_like(w);
        for (int p = 0; p < parts.Count; p++)
        {
            using var g = pieces[p].Grad;
            total.add_(g * parts[p].Weight);
        }
        w.backward([total]);
        return tensor(parts.Select((part, p) => part.Weight * pieces[p].Loss).Sum());
    }

    static double Total(IReadOnlyList<LossPart> parts, Tensor theta)
    {
        using var w = nn.functional.softmax(theta, -1);
        return Runtime.TorchWorkers.Map(parts, part =>
        {
            using var grad = no_grad();
            using var scope = NewDisposeScope();
            return part.Weight * Checked(part.Loss(w)).to(ScalarType.Float64).item<double>();
        }).Sum();
    }

    static Tensor Checked(Tensor? value)
    {
        if (value is null || value.numel() != 1) throw new ArgumentException($"simplex fit: the loss must return a scalar, got [{string.Join(", ", value?.shape ?? [])}]");
        return value.reshape([]);
    }

    static Tensor Evaluate(Func<Tensor, Tensor> loss, Tensor theta)
    {
        var value = loss(nn.functional.softmax(theta, -1));
        if (value is null || value.numel() != 1) throw new ArgumentException($"simplex fit: the loss must return a scalar, got [{string.Join(", ", value?.shape ?? [])}]");
        return value.reshape([]);
    }
}
