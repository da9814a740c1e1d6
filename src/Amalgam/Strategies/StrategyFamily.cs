namespace Amalgam.Strategies;

/// <summary>The five kinds of strategy; <c>reference</c> holds base, experts and oracles.</summary>
public static class StrategyFamily
{
    public const string Reference = "reference", Ensemble = "ensemble", Merge = "merge", Route = "route", Select = "select";
    public static IReadOnlyList<string> All { get; } = [Reference, Ensemble, Merge, Route, Select];
}

/// <summary>Variant tags the findings look for; any other tag is allowed and shown as is.</summary>
public static class StrategyVariant
{
    /// <summary>Equal weights (ensembling, merging).</summary>
    public const string Uniform = "uniform";
    /// <summary>Weights fitted on validation data (ensembling, merging).</summary>
    public const string Fitted = "fitted";
    /// <summary>Expert selection by clustering experts.</summary>
    public const string Cluster = "cluster";
    /// <summary>Expert selection by greedy subset search.</summary>
    public const string Greedy = "greedy";
}
