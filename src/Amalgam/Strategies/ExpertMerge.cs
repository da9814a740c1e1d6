using Amalgam.Merging;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;
using Amalgam.Models;

namespace Amalgam.Strategies;

/// <summary>
/// A merge of LoRA experts into one model through the merging executor (so with mergekit's exact semantics, in the
/// experts' dense update space), in memory: the typed plan is built directly and the merged tensors are copied into
/// the model as they are produced, with no temporary checkpoint. What the study's merge strategies and
/// Twin-Merging's shared model are built with.
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
        IReadOnlyDictionary<string, object>? parameters = null, IReadOnlyList<IReadOnlyList<double>>? weights = null, long seed = 0) =>
        InMemoryMerge.ToModel(Plan(basePath, expertPaths, method, parameters, weights, seed));

    /// <summary>The recipe (mergekit schema, <c>output: model</c>) that <see cref="ToModel"/> runs; also what a user can save and rerun.</summary>
    public static string Recipe(string basePath, IReadOnlyList<string> expertPaths, string method,
        IReadOnlyDictionary<string, object>? parameters = null, IReadOnlyList<IReadOnlyList<double>>? weights = null, long seed = 0) =>
        Plan(basePath, expertPaths, method, parameters, weights, seed).ToYaml();

    /// <summary>The typed plan behind both.</summary>
    public static MergeRecipe Plan(string basePath, IReadOnlyList<string> expertPaths, string method,
        IReadOnlyDictionary<string, object>? parameters = null, IReadOnlyList<IReadOnlyList<double>>? weights = null, long seed = 0)
    {
        if (weights is not null && weights.Count != expertPaths.Count)
            throw new ArgumentException($"{weights.Count} merge weights for {expertPaths.Count} experts");
        static object Literal(object v) => v switch
        {
            bool or string or double => v,
            float or int or long => Convert.ToDouble(v),
            _ => throw new ArgumentException($"merge parameter value {v} of type {v.GetType().Name} is not a number, bool or string"),
        };
        ParameterSetting Weight(IReadOnlyList<double> w) => w.Count == 1 ? new ScalarSetting(w[0]) : new GradientSetting(w.Select(x => (object)x).ToList());
        return new MergeRecipe
        {
            Method = MergeMethods.Get(method),
            BaseModel = Path.GetFullPath(basePath),
            Models = expertPaths.Select((p, i) => new RecipeModel(Path.GetFullPath(p),
                weights is null ? new Dictionary<string, ParameterSetting>() : new Dictionary<string, ParameterSetting> { ["weight"] = Weight(weights[i]) }, i)).ToList(),
            Parameters = (parameters ?? new Dictionary<string, object>()).ToDictionary(p => p.Key, p => (ParameterSetting)new ScalarSetting(Literal(p.Value))),
            RandomSeed = seed,
            Output = MergeOutput.Model,
            Source = $"{method} merge of {expertPaths.Count} experts",
        }.Checked();
    }
}
