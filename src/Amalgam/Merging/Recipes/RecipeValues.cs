using System.Globalization;

namespace Amalgam.Merging.Recipes;

/// <summary>
/// Values that a recipe file and the CLI flags spell the same way, read by one parser so that both give the same
/// plan and the same message. Problems come back as the caller's error, which prefixes its source.
/// </summary>
internal static class RecipeValues
{
    public static MergeOutput Output(string name, Func<string, string, Exception> error) => name switch
    {
        "model" => MergeOutput.Model,
        "adapter" => MergeOutput.Adapter,
        "cat" => MergeOutput.Cat,
        "factor_linear" => MergeOutput.FactorLinear,
        var other => throw error("output", $"unknown output '{other}' (known: model, adapter, cat, factor_linear)"),
    };

    /// <summary><c>rank</c>: a positive integer, or <c>auto</c> (null rank: the smallest under the error bound).</summary>
    public static (int? Rank, bool Auto) Rank(string text, Func<string, string, Exception> error) =>
        text == "auto" ? (null, true)
        : int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int k) && k > 0 ? (k, false)
        : throw error("rank", $"expected a positive integer or auto, got '{text}'");
}
