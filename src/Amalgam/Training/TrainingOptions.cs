namespace Amalgam.Training;

/// <summary>
/// Optimisation settings shared by LoRA and from-scratch training: AdamW, linear warm-up then cosine decay to
/// <see cref="MinLearningRateRatio"/> × peak, global gradient-norm clipping, a seed for initialisation and batch order.
/// </summary>
public sealed record TrainingOptions
{
    public int Steps { get; init; } = 600;
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 2e-3;
    public int WarmupSteps { get; init; } = 30;
    public double MinLearningRateRatio { get; init; } = 0.1;
    public double WeightDecay { get; init; } = 0.0;
    public double ClipNorm { get; init; } = 1.0;
    public int Seed { get; init; } = 0;

    public void Validate()
    {
        if (Steps <= 0) throw new ArgumentException($"steps: must be positive, got {Steps}");
        if (BatchSize <= 0) throw new ArgumentException($"batch size: must be positive, got {BatchSize}");
        if (LearningRate <= 0) throw new ArgumentException($"learning rate: must be positive, got {LearningRate}");
        if (WarmupSteps < 0 || WarmupSteps > Steps) throw new ArgumentException($"warm-up steps: must be in [0, {Steps}], got {WarmupSteps}");
        if (ClipNorm <= 0) throw new ArgumentException($"clip norm: must be positive, got {ClipNorm}");
    }

    /// <summary>The learning rate at 0-based <paramref name="step"/>: linear warm-up, then cosine decay.</summary>
    public double LearningRateAt(int step)
    {
        if (step < WarmupSteps) return LearningRate * (step + 1) / WarmupSteps;
        double progress = Steps == WarmupSteps ? 1 : (double)(step - WarmupSteps) / (Steps - WarmupSteps);
        double min = LearningRate * MinLearningRateRatio;
        return min + 0.5 * (LearningRate - min) * (1 + Math.Cos(Math.PI * Math.Min(1, progress)));
    }
}

/// <summary>One optimisation step's record, for progress display and the saved loss curve.</summary>
public sealed record TrainingStep(int Step, int Steps, double Loss, double LearningRate, double GradNorm);
