using System.Text.Json.Serialization;

namespace Amalgam.Routing;

/// <summary>
/// How a <see cref="LearnedRouter"/> is shaped and trained. Defaults: 2 hidden ReLU layers of width 64 (a small MLP
/// as in Twin-Merging's router; enough for a few dozen experts over hidden-state features, and cheap: ≈ F·64 + 64·64
/// + 64·K multiply-adds per example), 300 AdamW steps of 64 examples at a constant learning rate of 3e-3, weight
/// decay 0.01, no dropout.
/// </summary>
public sealed record LearnedRouterOptions
{
    [JsonPropertyName("hidden_width")] public int HiddenWidth { get; init; } = 64;
    [JsonPropertyName("hidden_layers")] public int HiddenLayers { get; init; } = 2;
    [JsonPropertyName("steps")] public int Steps { get; init; } = 300;
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; } = 64;
    [JsonPropertyName("learning_rate")] public double LearningRate { get; init; } = 3e-3;
    [JsonPropertyName("weight_decay")] public double WeightDecay { get; init; } = 0.01;
    /// <summary>Dropout on the hidden activations during training (0 = none); masks drawn from the seeded generator.</summary>
    [JsonPropertyName("dropout")] public double Dropout { get; init; } = 0.0;

    /// <summary>Throws a one-line ArgumentException naming the first bad field (prefixed by <paramref name="source"/> if given).</summary>
    public void Validate(string? source = null)
    {
        string at = source is null ? "" : $"{source}: ";
        if (HiddenWidth <= 0) throw new ArgumentException($"{at}hidden_width: must be positive, got {HiddenWidth}");
        if (HiddenLayers < 0) throw new ArgumentException($"{at}hidden_layers: must be 0 or more, got {HiddenLayers}");
        if (Steps <= 0) throw new ArgumentException($"{at}steps: must be positive, got {Steps}");
        if (BatchSize <= 0) throw new ArgumentException($"{at}batch_size: must be positive, got {BatchSize}");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentException($"{at}learning_rate: must be positive, got {LearningRate}");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) throw new ArgumentException($"{at}weight_decay: must be 0 or more, got {WeightDecay}");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"{at}dropout: must be in [0, 1), got {Dropout}");
    }
}

/// <summary>One training step of a learned router: mean cross-entropy and accuracy on its batch.</summary>
public sealed record RouterTrainingStep(int Step, double Loss, double BatchAccuracy);

/// <summary>A learned router's training: every step, and the final accuracy on the whole training set (no dropout).</summary>
public sealed record RouterTrainingLog(IReadOnlyList<RouterTrainingStep> Steps, double TrainAccuracy)
{
    public double FinalLoss => Steps[^1].Loss;
}
