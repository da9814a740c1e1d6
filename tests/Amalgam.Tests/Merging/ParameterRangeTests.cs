using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;
using Amalgam.Tests.Tensors;

namespace Amalgam.Tests.Merging;

/// <summary>Merge parameters are checked against their ranges when the plan is built; mergekit's wider ranges need flavor: mergekit.</summary>
public class ParameterRangeTests
{
    static string Recipe(string method, string globals, string perModel) =>
        $"merge_method: {method}\nbase_model: b\nmodels:\n  - model: a\n    parameters: {{{perModel}}}\nparameters: {{{globals}}}\n";

    static string Refused(string yaml) => Assert.Throws<InvalidDataException>(() => MergeRecipe.Parse(yaml, "recipe.yaml")).Message;

    [Theory]
    [InlineData("ties", "", "density: 1.5", "recipe.yaml: models[0].parameters.density: 1.5 is outside [0, 1] (fraction of entries kept (1 = no sparsification)); mergekit accepts [0, ∞): give flavor: mergekit to allow it")]
    [InlineData("dare_ties", "flavor: mergekit", "density: -0.1", "recipe.yaml: models[0].parameters.density: -0.1 is outside [0, ∞) (fraction of entries kept (1 = no sparsification))")]
    [InlineData("ties", "flavor: peft", "density: [0.5, 1.01]", "recipe.yaml: models[0].parameters.density: 1.01 is outside [0, 1] (fraction of entries kept (1 = no sparsification)); mergekit accepts [0, ∞): give flavor: mergekit to allow it")]
    [InlineData("breadcrumbs", "", "gamma: 2", "recipe.yaml: models[0].parameters.gamma: 2 is outside [0, 1] (fraction of largest-magnitude entries dropped as outliers)")]
    [InlineData("della", "", "epsilon: 0.5", "recipe.yaml: models[0].parameters.epsilon: 0.5 is outside [0, 0.5) (keep probabilities span density ± epsilon by magnitude rank)")]
    [InlineData("slerp", "t: 1.5", "", "recipe.yaml: parameters.t: 1.5 is outside [0, 1] (interpolation factor: 0 = base, 1 = the other model)")]
    [InlineData("karcher", "max_iter: 2.5", "", "recipe.yaml: parameters.max_iter: 2.5 is not an integer in [1, 10000] (most fixed-point iterations)")]
    [InlineData("sce", "select_topk: 0", "", "recipe.yaml: parameters.select_topk: 0 is outside (0, 1] (fraction of entries kept, by variance across the models (1 = all))")]
    [InlineData("nearswap", "t: -1", "", "recipe.yaml: parameters.t: -1 is outside [0, ∞) (similarity threshold: entries with |θ₀ − θ₁| ≤ t take θ₁)")]
    [InlineData("ties", "", "density: {filter: mlp, value: -0.5}", "recipe.yaml: models[0].parameters.density: -0.5 is outside [0, 1] (fraction of entries kept (1 = no sparsification))")]
    public void Out_of_range_parameters_are_refused_naming_the_field_and_range(string method, string globals, string perModel, string message) =>
        Assert.Equal(message, Refused(Recipe(method, globals, perModel)));

    [Theory]
    [InlineData("ties", "flavor: mergekit", "density: 1.5")]            // mergekit reads a density ≥ 1 as no sparsification
    [InlineData("task_arithmetic", "lambda: -2", "weight: -1")]        // negation is a real use of task arithmetic
    [InlineData("ties", "", "density: 0, weight: -0.5")]
    [InlineData("della", "", "density: 0.5, epsilon: 0.49")]
    public void In_range_and_mergekit_tolerated_values_are_accepted(string method, string globals, string perModel) =>
        MergeRecipe.Parse(Recipe(method, globals, perModel), "recipe.yaml");

    [Theory]
    [InlineData(".nan")]
    [InlineData(".NaN")]
    [InlineData("-.inf")]
    [InlineData("+.Inf")]
    public void Yaml_spellings_of_non_finite_numbers_are_refused(string value) =>
        Assert.Equal($"recipe.yaml: models[0].parameters.weight: {value} is not a finite number", Refused(Recipe("ties", "", $"weight: {value}")));

    [Theory]
    [InlineData("model")]
    [InlineData("adapter")]
    public void A_result_that_overflows_the_output_dtype_is_refused_naming_the_tensor(string output)
    {
        using var t = new TempFolder();
        string yaml = $"merge_method: task_arithmetic\nbase_model: {TestData.Golden("llama_gqa")}\nmodels:\n  - model: {TestData.Golden("llama_gqa.lora_qv")}\n    parameters: {{weight: 1e9}}\noutput: {output}\nout_dtype: float16\n";
        var e = Assert.Throws<InvalidDataException>(() => MergeRunner.Run(MergeRecipe.Parse(yaml, "recipe.yaml"), t.File("out")));
        Assert.Matches(@"^tensor 'model\.layers\.\d\.self_attn\.[qv]_proj\.weight': task_arithmetic's result overflows Float16 \(largest magnitude [\d.]+E\+\d+\); nothing was written$", e.Message);
        Assert.Empty(t.Entries());
    }
}
