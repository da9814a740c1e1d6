namespace Amalgam.Evaluation.Metrics;

/// <summary>
/// Exact match: 1 when the generated text equals the target after removing leading and trailing white space
/// (<see cref="string.Trim()"/>: spaces, tabs, newlines, any Unicode white space) from both; 0 otherwise.
/// Everything else counts: case, inner spaces, punctuation. The generation is expected to stop at the
/// end-of-sequence token; whatever the model produced before it is compared whole.
/// </summary>
public static class ExactMatch
{
    public static double Score(string generated, string target)
    {
        ArgumentNullException.ThrowIfNull(generated);
        ArgumentNullException.ThrowIfNull(target);
        return string.Equals(generated.Trim(), target.Trim(), StringComparison.Ordinal) ? 1.0 : 0.0;
    }
}
