using Amalgam.Merging.Recipes;

namespace Amalgam.Merging.Execution;

/// <summary>Where a running merge is: tensors done of total, and the one being worked on.</summary>
public sealed record MergeProgress(string Phase, int Done, int Total, string Tensor);

/// <summary>Knobs of a run that are not part of the recipe.</summary>
public sealed record MergeRunOptions
{
    public Action<MergeProgress>? Progress { get; init; }
    /// <summary>Processing order of the checkpoint keys (default: ordinal); tests use it to show results do not depend on it.</summary>
    public Func<IReadOnlyList<string>, IReadOnlyList<string>>? Order { get; init; }
    /// <summary>The text of <c>merge_recipe.yaml</c> when it is not the plan's own (a multi-stage plan writes all its stages).</summary>
    public string? RecipeYaml { get; init; }
    /// <summary>Row-block size, in elements of one input, for methods that merge in row blocks; 0 merges every key whole (tests compare the two).</summary>
    internal long BlockElements { get; init; } = 1L << 17;
    /// <summary>Whether the fused task-vector kernels may run (<see cref="FusedTaskVector"/>); tests compare them with the row-block and whole paths.</summary>
    internal bool Fused { get; init; } = true;
    /// <summary>Called with each key the fused kernels merged (tests check which keys took that path).</summary>
    internal Action<string>? OnFused { get; init; }
}

/// <summary>What a merge did.</summary>
public sealed record MergeSummary(
    string OutputFolder,
    MergeOutput Output,
    int TensorsMerged,
    int TensorsCopied,
    long BytesRead,
    long BytesWritten,
    TimeSpan Elapsed,
    IReadOnlyList<string> Notes);
