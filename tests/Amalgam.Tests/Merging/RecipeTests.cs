using Amalgam.Merging;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;

namespace Amalgam.Tests.Merging;

public class RecipeTests
{
    static MergeRecipe Parse(string yaml) => MergeRecipe.Parse(yaml, "recipe.yaml", TestMethods.Get);

    static string Refusal(string yaml) => Assert.Throws<InvalidDataException>(() => Parse(yaml)).Message;

    [Fact]
    public void Gradients_interpolate_piecewise_linearly_over_depth_and_non_layer_tensors_take_the_first_value()
    {
        var r = Parse("""
            merge_method: task_arithmetic
            base_model: base
            models:
              - model: a
                parameters: {weight: [0, 1, 0.5]}
            parameters:
              lambda: [2, 4]
            """);
        var resolver = new ParameterResolver(r, layers: 5);
        double W(string tensor) => resolver.ForModel(r.Models[0], tensor).Number("weight", double.NaN);
        Assert.Equal(0.0, W("model.layers.0.mlp.up_proj.weight"));
        Assert.Equal(0.5, W("model.layers.1.mlp.up_proj.weight"), 12);   // t = 0.25: halfway from 0 to 1
        Assert.Equal(1.0, W("model.layers.2.mlp.up_proj.weight"), 12);   // t = 0.5
        Assert.Equal(0.75, W("model.layers.3.self_attn.q_proj.weight"), 12); // t = 0.75: halfway from 1 to 0.5
        Assert.Equal(0.5, W("model.layers.4.input_layernorm.weight"), 12);
        Assert.Equal(0.0, W("model.embed_tokens.weight"));                // outside the layers: t = 0 (mergekit)
        Assert.Equal(0.0, W("lm_head.weight"));
        Assert.Equal(0.0, W("model.norm.weight"));
        Assert.Equal(3.0, resolver.Global("model.layers.2.mlp.up_proj.weight").Number("lambda", double.NaN), 12);
        // A single layer sits at t = 1, as in mergekit.
        Assert.Equal(0.5, new ParameterResolver(r, 1).ForModel(r.Models[0], "model.layers.0.mlp.up_proj.weight").Number("weight", double.NaN));
    }

    [Fact]
    public void Conditionals_take_the_first_match_and_fall_through_to_global_then_default()
    {
        var r = Parse("""
            merge_method: task_arithmetic
            base_model: base
            models:
              - model: a
                parameters:
                  weight:
                    - filter: self_attn
                      value: 0.1
                    - filter: q_proj
                      value: 0.9
                    - filter: mlp
                      value: [0.2, 0.4]
              - model: b
                parameters:
                  weight: 0.7
            parameters:
              weight: 0.3
              lambda:
                - filter: mlp
                  value: 0.5
            """);
        var res = new ParameterResolver(r, 2);
        Assert.Equal(0.1, res.ForModel(r.Models[0], "model.layers.0.self_attn.q_proj.weight").Number("weight", 0)); // first match wins
        Assert.Equal(0.4, res.ForModel(r.Models[0], "model.layers.1.mlp.up_proj.weight").Number("weight", 0), 12);
        Assert.Equal(0.3, res.ForModel(r.Models[0], "model.norm.weight").Number("weight", 0));   // no match: the global value
        Assert.Equal(0.7, res.ForModel(r.Models[1], "model.norm.weight").Number("weight", 0));   // per-model overrides global
        Assert.Equal(0.5, res.Global("model.layers.0.mlp.up_proj.weight").Number("lambda", 0));
        // No match anywhere: left unset, so the method applies its own (flavor-dependent) default.
        Assert.False(res.Global("model.layers.0.self_attn.q_proj.weight").Has("lambda"));
    }

    [Fact]
    public void A_catch_all_conditional_and_string_gradients_follow_mergekit()
    {
        var r = Parse("""
            merge_method: random_mask
            base_model: base
            models: [a]
            parameters:
              epsilon: 0.1
              mode: [sum, mean, sum]
              density:
                - filter: mlp
                  value: 0.9
                - value: 0.2
            """);
        var res = new ParameterResolver(r, 3);
        Assert.Equal(0.2, res.ForModel(r.Models[0], "model.layers.0.self_attn.q_proj.weight").Number("density", 0));
        Assert.Equal("mean", res.Global("model.layers.1.mlp.up_proj.weight").Choice("mode", ""));
        Assert.Equal("sum", res.Global("model.layers.2.mlp.up_proj.weight").Choice("mode", ""));
    }

    [Fact]
    public void Model_paths_resolve_against_the_working_directory_and_amalgam_fields_parse()
    {
        var r = Parse("""
            merge_method: linear
            base_model: ./base
            models:
              - model: experts/a
                parameters: {weight: 1}
              - model: /abs/b
                parameters: {weight: 2}
            dtype: bfloat16
            out_dtype: float16
            random_seed: 42
            out_shard_size: 500M
            output: model
            """);
        Assert.Equal(Path.Combine(Environment.CurrentDirectory, "base"), r.BaseModel);
        Assert.Equal(Path.Combine(Environment.CurrentDirectory, "experts", "a"), r.Models[0].Path);
        Assert.Equal("/abs/b", r.Models[1].Path);
        Assert.Equal(TorchSharp.torch.ScalarType.BFloat16, r.Dtype);
        Assert.Equal(TorchSharp.torch.ScalarType.Float16, r.OutDtype);
        Assert.Equal(TorchSharp.torch.ScalarType.Float32, r.ComputeDtype);
        Assert.Equal(42, r.RandomSeed);
        Assert.Equal(500_000_000, r.OutShardSize);
        Assert.Equal(MergeOutput.Model, r.Output);
    }

    [Theory]
    [InlineData("5B", 5_000_000_000)]
    [InlineData("500M", 500_000_000)]
    [InlineData("1000000", 1_000_000)]
    [InlineData("2KiB", 2048)]
    [InlineData("64k", 64_000)]
    [InlineData("1.5G", 1_500_000_000)]
    public void Shard_sizes_parse(string text, long bytes)
    {
        Assert.True(ByteSize.TryParse(text, out long b));
        Assert.Equal(bytes, b);
    }

    [Theory]
    [InlineData("merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1, densty: 0.5}\n",
        "recipe.yaml: models[1].parameters.densty: unknown parameter for linear")]
    [InlineData("merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\nparameters: {lambda: 1}\n",
        "recipe.yaml: parameters.lambda: unknown parameter for linear")]
    [InlineData("merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n",
        "recipe.yaml: models[1].parameters.weight: missing; required by linear")]
    [InlineData("merge_method: random_mask\nbase_model: base\nmodels: [a]\n",
        "recipe.yaml: parameters.epsilon: missing; required by random_mask")]
    [InlineData("merge_method: tiez\nmodels: [a]\n",
        "recipe.yaml: merge_method: unknown method 'tiez'")]
    [InlineData("merge_method: task_arithmetic\nbase_model: base\nmodels:\n  - model: a\n    parameters: {weight: 1, lambda: 2}\n",
        "recipe.yaml: models[0].parameters.lambda: 'lambda' is a global parameter of task_arithmetic")]
    [InlineData("merge_method: task_arithmetic\nmodels:\n  - model: a\n    parameters: {weight: 1}\n",
        "recipe.yaml: base_model: missing; required by task_arithmetic")]
    [InlineData("merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: heavy}\n",
        "recipe.yaml: models[0].parameters.weight: expected a number, got 'heavy'")]
    [InlineData("merge_method: random_mask\nbase_model: base\nmodels: [a]\nparameters: {epsilon: 1, mode: median}\n",
        "recipe.yaml: parameters.mode: expected one of sum, mean, got 'median'")]
    [InlineData("merge_method: linear\nslices: []\nmodels: [a]\n", "recipe.yaml: slices: ")]
    [InlineData("merge_method: linear\nmodels: [a]\nparameters: {weight: 1}\ndtype: float8\n", "recipe.yaml: dtype: unknown dtype 'float8'")]
    [InlineData("merge_method: linear\nmodels: [a]\nparameters: {weight: 1}\nout_shard_size: lots\n", "recipe.yaml: out_shard_size: expected a size")]
    [InlineData("merge_method: linear\nmodels: [a]\nparameters: {weight: 1}\noutput: model\nrank: 4\n", "recipe.yaml: rank: only used with output: adapter")]
    [InlineData("merge_method: linear\nmodels: [a]\nparameters: {weight: 1}\nwhatever: 1\n", "recipe.yaml: whatever: unknown field")]
    [InlineData("merge_method: linear\nmodels: [a]\nparameters:\n  weight:\n    - filter: mlp\n      valu: 1\n", "recipe.yaml: parameters.weight[0].valu: unknown field")]
    [InlineData("merge_method: [linear\n", "recipe.yaml: not valid YAML")]
    [InlineData("merge_method: ties\nbase_model: base\nmodels: [a]\npruning_order: [a]\n", "recipe.yaml: pruning_order: unknown field")]
    public void Refusals_are_one_line_naming_the_field(string yaml, string expected)
    {
        string message = Refusal(yaml);
        Assert.StartsWith(expected, message);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public void A_model_listed_twice_is_merged_once_with_its_first_listings_values_as_mergekit_looks_them_up()
    {
        var r = Parse("""
            merge_method: linear
            models:
              - model: a
                parameters:
                  weight: [{filter: mlp, value: 1}]
              - model: b
                parameters: {weight: 3}
              - model: ./a
                parameters: {weight: 2}
            """);
        Assert.Equal([Path.GetFullPath("a"), Path.GetFullPath("b")], r.Models.Select(m => m.Path));
        var resolver = new ParameterResolver(r, 2);
        // the first listing's filter where it matches, the later listing's value where it does not
        Assert.Equal(1.0, resolver.ForModel(r.Models[0], "model.layers.0.mlp.up_proj.weight").Number("weight", double.NaN));
        Assert.Equal(2.0, resolver.ForModel(r.Models[0], "model.layers.0.self_attn.q_proj.weight").Number("weight", double.NaN));
        Assert.Equal(r.ToYaml(), Parse(r.ToYaml()).ToYaml());
    }

    [Fact]
    public void Cabs_takes_its_parameters_beside_merge_method_and_a_list_is_one_value_for_every_tensor()
    {
        static MergeRecipe Real(string yaml) => MergeRecipe.Parse(yaml, "cabs.yml");
        var r = Real("merge_method: cabs\nbase_model: base\nmodels: [a, b]\ndefault_n_val: 2\ndefault_m_val: 8\npruning_order: [b, a]\n");
        var resolver = new ParameterResolver(r, 4);
        var g = resolver.Global("model.layers.3.mlp.up_proj.weight");
        Assert.Equal(["b", "a"], g.List("pruning_order")!);
        Assert.Equal((2.0, 8.0), (g.Number("default_n_val", 0), g.Number("default_m_val", 0)));
        Assert.Equal(r.ToYaml(), Real(r.ToYaml()).ToYaml());
        var flags = new RecipeFlags { Method = "cabs", BaseModel = "base", Models = ["a", "b"], Sets = ["pruning_order=b,a", "n_val=2", "m_val=8"] }.ToRecipe(MergeMethods.Get);
        Assert.Equal(["b", "a"], new ParameterResolver(flags, 4).Global("model.layers.0.mlp.up_proj.weight").List("pruning_order")!);
        string Refused(string yaml) => Assert.Throws<InvalidDataException>(() => Real(yaml)).Message;
        Assert.StartsWith("cabs.yml: default_n_val: given both at the top level and under parameters",
            Refused("merge_method: cabs\nbase_model: base\nmodels: [a]\ndefault_n_val: 2\nparameters: {default_n_val: 3}\n"));
        Assert.StartsWith("cabs.yml: parameters.pruning_order: expected a list of names",
            Refused("merge_method: cabs\nbase_model: base\nmodels: [a]\nparameters:\n  pruning_order: [{filter: mlp, value: a}]\n"));
        Assert.StartsWith("cabs.yml: models[0].parameters.n_val: 2.5 is not an integer",
            Refused("merge_method: cabs\nbase_model: base\nmodels:\n  - model: a\n    parameters: {n_val: 2.5, m_val: 4}\n"));
    }

    [Fact]
    public void The_flags_form_builds_the_same_recipe()
    {
        var flags = new RecipeFlags
        {
            Method = "task_arithmetic",
            BaseModel = "base",
            Models = ["a", "b"],
            Sets = ["weight=0.3", "1:weight=0.7", "lambda=0.5,1.5"],
            OutDtype = "bfloat16",
        };
        var r = flags.ToRecipe(TestMethods.Get);
        var res = new ParameterResolver(r, 3);
        Assert.Equal(0.3, res.ForModel(r.Models[0], "model.layers.0.mlp.up_proj.weight").Number("weight", 0));
        Assert.Equal(0.7, res.ForModel(r.Models[1], "model.layers.0.mlp.up_proj.weight").Number("weight", 0));
        Assert.Equal(1.0, res.Global("model.layers.1.mlp.up_proj.weight").Number("lambda", 0), 12);
        Assert.Equal(Path.GetFullPath("b"), r.Models[1].Path);
        Assert.StartsWith("command line: parameters.densty: unknown parameter",
            Assert.Throws<InvalidDataException>(() => (flags with { Sets = ["densty=0.5"] }).ToRecipe(TestMethods.Get)).Message);
        Assert.Contains("not a model index", Assert.Throws<InvalidDataException>(() => (flags with { Sets = ["5:weight=1"] }).ToRecipe(TestMethods.Get)).Message);
        // the plan written back reads as the same plan
        var again = Parse(r.ToYaml());
        Assert.Equal(r.ToYaml(), again.ToYaml());
    }
}
