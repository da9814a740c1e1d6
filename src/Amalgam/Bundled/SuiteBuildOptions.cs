using Amalgam.Training;

namespace Amalgam.Bundled;

/// <summary>
/// Everything that determines the bundled suite: seeds, the base model's shape, the pretraining corpus and the
/// training budgets. <see cref="Quick"/> is a tiny variant for tests (seconds, not minutes; quality not meaningful).
/// </summary>
public sealed record SuiteBuildOptions
{
    public int Seed { get; init; } = 1234;
    public int TrainExamples { get; init; } = 2000;
    public int ValidationExamples { get; init; } = 100;
    public int TestExamples { get; init; } = 100;
    public int HiddenSize { get; init; } = 128;
    public int Layers { get; init; } = 4;
    public int Heads { get; init; } = 4;
    public int KeyValueHeads { get; init; } = 2;
    public int IntermediateSize { get; init; } = 344;
    public int CorpusSize { get; init; } = 40000;
    public TrainingOptions Base { get; init; } = new() { Steps = 3000, BatchSize = 32, LearningRate = 2e-3, WarmupSteps = 100, WeightDecay = 0.01 };
    public TrainingOptions Expert { get; init; } = new() { Steps = 600, BatchSize = 32, LearningRate = 5e-3, WarmupSteps = 30 };
    public int LoraRank { get; init; } = 8;
    public double LoraAlpha { get; init; } = 16;
    public string? WordListPath { get; init; }

    public static SuiteBuildOptions Quick { get; } = new()
    {
        TrainExamples = 64, ValidationExamples = 8, TestExamples = 8, HiddenSize = 32, Layers = 1, Heads = 2, KeyValueHeads = 1,
        IntermediateSize = 64, CorpusSize = 200,
        Base = new() { Steps = 3, BatchSize = 8, WarmupSteps = 1 },
        Expert = new() { Steps = 2, BatchSize = 8, WarmupSteps = 1 },
        LoraRank = 2, LoraAlpha = 4,
    };
}
