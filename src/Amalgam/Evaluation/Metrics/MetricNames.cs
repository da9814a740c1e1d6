namespace Amalgam.Evaluation.Metrics;

/// <summary>The metric names a suite's tasks may use (<c>metric:</c> in suite.yaml).</summary>
public static class MetricNames
{
    /// <summary>Greedy generation compared with the target by <see cref="Metrics.ExactMatch"/>.</summary>
    public const string ExactMatch = "exact_match";

    /// <summary>The option with the highest summed log-likelihood must be the target (<see cref="Metrics.OptionAccuracy"/>).</summary>
    public const string OptionAccuracy = "option_accuracy";

    public static IReadOnlyList<string> All { get; } = [ExactMatch, OptionAccuracy];

    public static bool IsKnown(string name) => All.Contains(name, StringComparer.Ordinal);
}
