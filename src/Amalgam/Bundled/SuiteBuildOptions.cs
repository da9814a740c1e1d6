using Amalgam.Training;

namespace Amalgam.Bundled;

/// <summary>How the bundled suite's base is made (<c>amalgam suite build --variant</c>).</summary>
public enum SuiteVariant
{
    /// <summary>
    /// The from-scratch base, then a short instruction-tuning stage on one phrasing of every held-in task: the base
    /// knows each task partly, as an instruction-tuned base does, and each expert adds the rest. The default.
    /// </summary>
    Instruct,

    /// <summary>The base trained from scratch on neighbouring questions only: it knows no held-in task.</summary>
    Scratch,
}

/// <summary>
/// Everything that determines the bundled suite: the variant, seeds, the base model's shape, the pretraining corpus,
/// the instruction-tuning mixture and the training budgets. <see cref="Quick"/> is a tiny suite for tests (seconds,
/// not minutes; quality not meaningful).
/// </summary>
public sealed record SuiteBuildOptions
{
    // `amalgam suite build` with no option regenerates what suite/ holds (the instruct variant; suite/scratch/ is the other).
    public SuiteVariant Variant { get; init; } = SuiteVariant.Instruct;
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
    /// <summary>
    /// Instruct variant: a from-scratch base to start the instruction stage from (a folder built by this recipe with
    /// the same seed, e.g. the scratch variant's base/), instead of training it again; null trains it.
    /// </summary>
    public string? PretrainedBase { get; init; }

    /// <summary>
    /// Instruct variant: an instruction-tuned base built earlier by this recipe (same seed and words), reused as is,
    /// so that only the experts are trained; null runs the instruction stage.
    /// </summary>
    public string? TunedBase { get; init; }

    /// <summary>
    /// Experts trained at the same time, each on its own copy of the base; 1 trains them one after the other on the
    /// base itself. Each expert's result does not depend on this (its own seed, its own copy).
    /// </summary>
    public int ExpertJobs { get; init; } = 1;

    /// <summary>Instruct variant: training examples of each held-in task in the instruction mixture, all in one phrasing.</summary>
    public int InstructionExamplesPerTask { get; init; } = 400;

    /// <summary>Instruct variant: the index of the one template (phrasing) of each task that the instruction mixture uses.</summary>
    public int InstructionTemplate { get; init; } = 0;

    /// <summary>Instruct variant: pretraining questions replayed in the instruction mixture, so the base keeps its other skills.</summary>
    public int InstructionReplay { get; init; } = 2400;

    public TrainingOptions Instruction { get; init; } = new() { Steps = 800, BatchSize = 32, LearningRate = 1e-3, WarmupSteps = 30, WeightDecay = 0.01 };
    public TrainingOptions Expert { get; init; } = new() { Steps = 600, BatchSize = 32, LearningRate = 5e-3, WarmupSteps = 30 };
    public int LoraRank { get; init; } = 8;
    public double LoraAlpha { get; init; } = 16;
    public string? WordListPath { get; init; }

    /// <summary>The recipe of a variant: the same budgets, the variant's base.</summary>
    public static SuiteBuildOptions For(SuiteVariant variant) => new() { Variant = variant };

    public static SuiteBuildOptions Quick { get; } = new()
    {
        Variant = SuiteVariant.Instruct,
        TrainExamples = 64, ValidationExamples = 8, TestExamples = 8, HiddenSize = 32, Layers = 1, Heads = 2, KeyValueHeads = 1,
        IntermediateSize = 64, CorpusSize = 200,
        Base = new() { Steps = 3, BatchSize = 8, WarmupSteps = 1 },
        InstructionExamplesPerTask = 4, InstructionReplay = 16,
        Instruction = new() { Steps = 2, BatchSize = 8, WarmupSteps = 1 },
        Expert = new() { Steps = 2, BatchSize = 8, WarmupSteps = 1 },
        LoraRank = 2, LoraAlpha = 4,
    };
}
