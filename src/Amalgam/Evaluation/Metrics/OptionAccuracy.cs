namespace Amalgam.Evaluation.Metrics;

/// <summary>
/// Option accuracy: each option's log-likelihood is the sum of the log-probabilities of its tokens after the
/// prompt (the caller computes it); the example scores 1 when the target option's sum is strictly greater than
/// every other option's, else 0. A tie counts as wrong, so a model that cannot tell the options apart scores 0,
/// not 1/k by the order of the options.
/// </summary>
public static class OptionAccuracy
{
    public static double Score(IReadOnlyList<double> optionLogLikelihoods, int targetIndex)
    {
        ArgumentNullException.ThrowIfNull(optionLogLikelihoods);
        if (optionLogLikelihoods.Count < 2)
            throw new ArgumentException($"need at least 2 options, got {optionLogLikelihoods.Count}", nameof(optionLogLikelihoods));
        if ((uint)targetIndex >= (uint)optionLogLikelihoods.Count)
            throw new ArgumentOutOfRangeException(nameof(targetIndex), targetIndex, $"target index outside 0..{optionLogLikelihoods.Count - 1}");
        for (int i = 0; i < optionLogLikelihoods.Count; i++)
            if (double.IsNaN(optionLogLikelihoods[i]))
                throw new ArgumentException($"option {i} has a NaN log-likelihood", nameof(optionLogLikelihoods));

        double target = optionLogLikelihoods[targetIndex];
        for (int i = 0; i < optionLogLikelihoods.Count; i++)
            if (i != targetIndex && optionLogLikelihoods[i] >= target)
                return 0.0;
        return 1.0;
    }

    /// <summary>The index of <paramref name="target"/> among <paramref name="options"/> (ordinal comparison).</summary>
    public static int TargetIndex(IReadOnlyList<string> options, string target)
    {
        for (int i = 0; i < options.Count; i++)
            if (string.Equals(options[i], target, StringComparison.Ordinal)) return i;
        throw new ArgumentException($"target \"{target}\" is not one of the options");
    }
}
