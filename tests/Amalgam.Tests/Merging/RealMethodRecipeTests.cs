using Amalgam.Merging;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

/// <summary>The registered methods through real recipes: what the executor passes is what the method expects.</summary>
public class RealMethodRecipeTests
{
    [Theory]
    [InlineData("ties", "mergekit", true)]
    [InlineData("ties", "peft", true)]
    [InlineData("ties", "fusion_bench", true)] // with trim_scope: tensor; model scope needs the whole-model pass
    [InlineData("task_arithmetic", "peft", false)]
    [InlineData("magnitude_prune", "peft", true)]
    public void A_recipe_merge_equals_the_method_applied_to_each_tensor(string method, string flavor, bool sparse)
    {
        string scope = flavor == "fusion_bench" ? "\n  trim_scope: tensor" : "";
        string d1 = sparse ? ", density: 0.5" : "", d2 = sparse ? ", density: 0.6" : "";
        using var tmp = new TestData.TempDir();
        string a = MergeFixtures.Perturbed(tmp, "a", 1), b = MergeFixtures.Perturbed(tmp, "b", 2);
        string baseDir = TestData.Golden(MergeFixtures.Base);
        var recipe = MergeRecipe.Parse($"""
            merge_method: {method}
            base_model: {baseDir}
            parameters:
              flavor: {flavor}{scope}
            models:
              - model: {a}
                parameters: {"{"}weight: 0.7{d1}{"}"}
              - model: {b}
                parameters: {"{"}weight: 0.4{d2}{"}"}
            """.Replace("\\n", "\n"), "recipe.yaml");
        MergeRunner.Run(recipe, tmp["out"]);
        var merged = MergeFixtures.ReadAll(tmp["out"]);
        var m = MergeMethods.Get(method);
        using var disposeScope = NewDisposeScope();
        var global = new Dictionary<string, object> { ["flavor"] = flavor };
        if (flavor == "fusion_bench") global["trim_scope"] = "tensor";
        foreach (var name in new[] { "model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight", "model.norm.weight" })
        {
            var inputs = new MergeTensorInputs(name,
                MergeFixtures.Load(baseDir, name).to(ScalarType.Float32),
                [MergeFixtures.Load(a, name).to(ScalarType.Float32), MergeFixtures.Load(b, name).to(ScalarType.Float32)],
                sparse ? [P(("weight", 0.7), ("density", 0.5)), P(("weight", 0.4), ("density", 0.6))] : [P(("weight", 0.7)), P(("weight", 0.4))],
                new MergeParameters(global));
            var expected = m.Merge(inputs).to(ScalarType.Float64);
            double diff = (merged[name] - expected).abs().max().item<double>();
            Assert.True(diff < 1e-6, $"{name}: {diff}");
        }
        MergeFixtures.Dispose(merged);
    }

    [Fact]
    public void Flavors_change_the_result()
    {
        using var tmp = new TestData.TempDir();
        string a = MergeFixtures.Perturbed(tmp, "a", 1), b = MergeFixtures.Perturbed(tmp, "b", 2);
        foreach (var flavor in new[] { "mergekit", "peft" })
            MergeRunner.Run(MergeRecipe.Parse($"""
                merge_method: ties
                base_model: {TestData.Golden(MergeFixtures.Base)}
                parameters: {"{"}flavor: {flavor}, density: 0.5{"}"}
                models: [{"{"}model: {a}, parameters: {"{"}weight: 0.7{"}"}{"}"}, {"{"}model: {b}, parameters: {"{"}weight: 0.4{"}"}{"}"}]
                """, "recipe.yaml"), tmp[flavor]);
        const string name = "model.layers.0.mlp.up_proj.weight";
        using var x = MergeFixtures.Load(tmp["mergekit"], name);
        using var y = MergeFixtures.Load(tmp["peft"], name);
        Assert.True((x - y).abs().max().item<float>() > 1e-4);
    }

    static MergeParameters P(params (string, object)[] values) => new(values.ToDictionary(v => v.Item1, v => v.Item2));
}
