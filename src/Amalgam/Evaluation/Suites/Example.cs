namespace Amalgam.Evaluation.Suites;

/// <summary>
/// One example of a task: the input the prompt is built from, the target the model should produce, and for
/// <c>option_accuracy</c> tasks the options to rank (the target is one of them). Options are null when absent.
/// </summary>
public sealed record Example(string Input, string Target, IReadOnlyList<string>? Options = null)
{
    /// <summary>Where the example was read, <c>file:line</c> (e.g. <c>data/x/test.jsonl:3</c>), for messages; not part of equality.</summary>
    public string? Where { get; init; }

    /// <summary>Value equality that compares the options element by element (records compare lists by reference).</summary>
    public bool Equals(Example? other) =>
        other is not null && Input == other.Input && Target == other.Target &&
        (Options is null ? other.Options is null : other.Options is not null && Options.SequenceEqual(other.Options));

    public override int GetHashCode() => HashCode.Combine(Input, Target, Options?.Count ?? -1);
}
