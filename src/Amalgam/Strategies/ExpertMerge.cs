using System.Globalization;
using System.Text;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;
using Amalgam.Models;

namespace Amalgam.Strategies;

/// <summary>
/// A merge of LoRA experts into one model through the merging executor (so with mergekit's exact semantics, in the
/// experts' dense update space): the recipe is written as YAML, merged into a scratch folder, loaded, and the folder
/// removed. What the study's merge strategies and Twin-Merging's shared model are built with.
/// </summary>
public static class ExpertMerge
{
    /// <param name="method">a registered merge method, e.g. <c>linear</c>, <c>task_arithmetic</c>, <c>ties</c>, <c>dare_ties</c></param>
    /// <param name="parameters">global parameters (e.g. <c>lambda</c>, <c>density</c>)</param>
    /// <param name="basePath">the base checkpoint folder</param>
    /// <param name="expertPaths">PEFT adapter folders</param>
    /// <param name="weights">per expert one weight, or one per decoder layer (a mergekit gradient over depth; with as
    /// many values as layers, layer i gets value i exactly); null for the method's default</param>
    /// <param name="seed">random_seed of randomised methods (DARE)</param>
    public static CausalLM ToModel(string basePath, IReadOnlyList<string> expertPaths, string method,
        IReadOnlyDictionary<string, object>? parameters = null, IReadOnlyList<IReadOnlyList<double>>? weights = null, long seed = 0)
    {
        if (weights is not null && weights.Count != expertPaths.Count)
            throw new ArgumentException($"{weights.Count} merge weights for {expertPaths.Count} experts");
        var yaml = Recipe(basePath, expertPaths, method, parameters, weights, seed);
        var dir = Path.Combine(Path.GetTempPath(), "amalgam-merge-" + Guid.NewGuid().ToString("N"));
        try
        {
            MergeRunner.Run(MergeRecipe.Parse(yaml, $"{method} merge of {expertPaths.Count} experts"), dir);
            return CheckpointLoader.Load(dir);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The recipe (mergekit schema, <c>output: model</c>) that <see cref="ToModel"/> runs; also what a user can save and rerun.</summary>
    public static string Recipe(string basePath, IReadOnlyList<string> expertPaths, string method,
        IReadOnlyDictionary<string, object>? parameters = null, IReadOnlyList<IReadOnlyList<double>>? weights = null, long seed = 0)
    {
        static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
        static string Value(object v) => v switch
        {
            bool b => b ? "true" : "false",
            double or float or int or long => Convert.ToDouble(v).ToString("R", CultureInfo.InvariantCulture),
            string s => Quote(s),
            _ => throw new ArgumentException($"merge parameter value {v} of type {v.GetType().Name} is not a number, bool or string"),
        };
        var y = new StringBuilder();
        y.AppendLine($"merge_method: {method}");
        y.AppendLine($"base_model: {Quote(Path.GetFullPath(basePath))}");
        y.AppendLine("models:");
        for (int i = 0; i < expertPaths.Count; i++)
        {
            y.AppendLine($"  - model: {Quote(Path.GetFullPath(expertPaths[i]))}");
            if (weights is not null)
                y.AppendLine($"    parameters: {{weight: {(weights[i].Count == 1 ? Value(weights[i][0]) : "[" + string.Join(", ", weights[i].Select(w => Value(w))) + "]")}}}");
        }
        if (parameters is { Count: > 0 })
        {
            y.AppendLine("parameters:");
            foreach (var (name, v) in parameters) y.AppendLine($"  {name}: {Value(v)}");
        }
        y.AppendLine($"random_seed: {seed}");
        y.AppendLine("output: model");
        return y.ToString();
    }
}
