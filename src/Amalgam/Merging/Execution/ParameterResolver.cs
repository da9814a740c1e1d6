using System.Text.RegularExpressions;
using Amalgam.Merging.Recipes;

namespace Amalgam.Merging.Execution;

/// <summary>
/// Resolves a recipe's parameter settings for one tensor, the way mergekit's planner does: depth
/// <c>t = i/(L−1)</c> for tensors of layer i of a stack of L (1 when L = 1), and <c>t = 0</c> for everything outside the layers
/// (embeddings, the final norm and lm_head all get a gradient's first value); per-model settings first, then the
/// top-level ones, then the method's default; a conditional list that matches nothing falls through to the next level.
/// </summary>
public sealed partial class ParameterResolver
{
    private readonly MergeRecipe recipe;
    private readonly ModelLayout layout;

    /// <summary>A decoder of <paramref name="layers"/> layers (<c>model.layers.N.</c>).</summary>
    public ParameterResolver(MergeRecipe recipe, int layers) : this(recipe, ModelLayout.DecoderOf(layers)) { }

    /// <summary>Depth within each of the layout's layer stacks.</summary>
    public ParameterResolver(MergeRecipe recipe, ModelLayout layout)
    {
        this.recipe = recipe;
        this.layout = layout;
    }

    [GeneratedRegex(@"(?:^|\.)layers\.(\d+)\.")]
    private static partial Regex LayerPattern();

    /// <summary>The layer index of a tensor (<c>model.layers.{i}.</c>), or null outside the layers.</summary>
    public static int? LayerOf(string tensorName) =>
        LayerPattern().Match(tensorName) is { Success: true } m ? int.Parse(m.Groups[1].Value) : null;

    /// <summary>The depth fraction mergekit uses for this tensor (within its layer stack).</summary>
    public double DepthOf(string tensorName) => layout.DepthOf(tensorName);

    /// <summary>The method's global-scope parameters for this tensor.</summary>
    public MergeParameters Global(string tensorName) => Global(tensorName, DepthOf(tensorName));

    /// <summary>The same at an explicit depth (slices index gradients over the slice).</summary>
    public MergeParameters Global(string tensorName, double t)
    {
        var values = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var spec in recipe.Method.Parameters.Where(p => p.Scope == ParameterScope.Global))
            if (Resolve(spec, null, tensorName, t, required: true) is { } v) values[spec.Name] = v;
        return new MergeParameters(values);
    }

    /// <summary>The per-model parameters of <paramref name="model"/> for this tensor (the base model needs none).</summary>
    public MergeParameters ForModel(RecipeModel model, string tensorName, bool isBase = false) => ForModel(model, tensorName, DepthOf(tensorName), isBase);

    public MergeParameters ForModel(RecipeModel model, string tensorName, double t, bool isBase = false)
    {
        var values = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var spec in recipe.Method.Parameters.Where(p => p.Scope == ParameterScope.PerModel))
            if (Resolve(spec, model, tensorName, t, required: !isBase) is { } v) values[spec.Name] = v;
        return new MergeParameters(values);
    }

    object? Resolve(ParameterSpec spec, RecipeModel? model, string tensorName, double t, bool required)
    {
        if (spec.Kind == ParameterKind.List)
        {
            // A list is one value for every tensor (PlanCheck refuses filters on it), not a gradient over depth.
            var setting = model is not null && model.Parameters.TryGetValue(spec.Name, out var mine) ? mine
                : recipe.Parameters.TryGetValue(spec.Name, out var all) ? all : null;
            return setting switch
            {
                null => null,
                GradientSetting g => g.Values.Select(v => (string)v).ToList(),
                ScalarSetting s => new List<string> { (string)s.Value },
                _ => throw new InvalidOperationException($"parameter '{spec.Name}': a list takes no filters"),
            };
        }
        if (model is not null && model.Parameters.TryGetValue(spec.Name, out var own) && own.Evaluate(tensorName, t) is { } a) return a;
        if (recipe.Parameters.TryGetValue(spec.Name, out var top) && top.Evaluate(tensorName, t) is { } b) return b;
        // Optional parameters stay unset: the method applies its defaults, which depend on the flavor
        // (filling mergekit's schema default here would silently override `flavor: peft`).
        if (spec.Default is not null || !required) return null;
        string where = model is null ? $"parameters.{spec.Name}"
            : recipe.Slices is null ? $"models[{model.Index}].parameters.{spec.Name}" : $"{PlanCheck.SourceField(recipe, model)}.parameters.{spec.Name}";
        throw new InvalidDataException($"{recipe.Source}: {where}: no value for tensor '{tensorName}' (no filter matched and {recipe.Method.Name} has no default)");
    }
}
