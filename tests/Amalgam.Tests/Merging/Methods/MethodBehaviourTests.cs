using Amalgam.Merging;
using Amalgam.Merging.Parts;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging.Methods;

/// <summary>Slerp endpoints and fallback, the registry, and the parameter schema's refusals.</summary>
public class MethodBehaviourTests
{
    static MergeParameters P(params (string, object)[] kv) => new(kv.ToDictionary(p => p.Item1, p => p.Item2));

    static Tensor Slerp(Tensor a, Tensor b, double t) =>
        MergeMethods.Get("slerp").Merge(new MergeTensorInputs("w", a, [b], [MergeParameters.Empty], P(("t", t))));

    [Fact]
    public void Slerp_endpoints_are_the_base_and_the_other_model()
    {
        using var scope = NewDisposeScope();
        var a = randn([6, 8], dtype: ScalarType.Float64, generator: new Generator(1));
        var b = randn([6, 8], dtype: ScalarType.Float64, generator: new Generator(2));
        Assert.True(Slerp(a, b, 0).allclose(a, rtol: 0, atol: 1e-12));
        Assert.True(Slerp(a, b, 1).allclose(b, rtol: 0, atol: 1e-12));
    }

    [Fact]
    public void Slerp_falls_back_to_lerp_for_nearly_parallel_tensors()
    {
        using var scope = NewDisposeScope();
        var a = randn([6, 8], dtype: ScalarType.Float64, generator: new Generator(1));
        var b = a * 3.0; // cos = 1
        Assert.True(Slerp(a, b, 0.25).allclose(a * 0.75 + b * 0.25, rtol: 0, atol: 1e-12));
    }

    [Fact]
    public void Slerp_keeps_the_norm_between_unit_vectors()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new double[] { 1, 0 });
        var b = tensor(new double[] { 0, 1 });
        var r = Slerp(a, b, 0.5).data<double>().ToArray();
        Assert.Equal(Math.Sqrt(0.5), r[0], 12);
        Assert.Equal(Math.Sqrt(0.5), r[1], 12);
    }

    [Fact]
    public void Registry_has_every_method()
    {
        string[] expected = ["linear", "task_arithmetic", "ties", "dare_linear", "dare_ties", "magnitude_prune", "breadcrumbs",
            "breadcrumbs_ties", "della", "della_linear", "slerp", "model_stock", "tsv", "iso_c",
            "passthrough", "nuslerp", "multislerp", "karcher", "nearswap", "sce", "arcee_fusion", "ram", "ramplus_tl", "lrp", "core_space", "cabs", "encoder_decoder_weighted"];
        Assert.Equal(expected.Order(), MergeMethods.All.Keys.Order());
        Assert.True(MergeMethods.Get("dare_ties").IsRandomized);
        Assert.False(MergeMethods.Get("ties").IsRandomized);
    }

    static MergeTensorInputs TiesInputs(MergeParameters global)
    {
        var b = zeros(4, 4);
        return new("w", b, [ones(4, 4), -ones(4, 4)], [P(("density", 0.5)), P(("density", 0.5))], global);
    }

    [Theory]
    [InlineData("flavor", "mergekitt")]
    [InlineData("consensus", "majority")]
    [InlineData("consensus_on", "both")]
    [InlineData("divisor", "mean")]
    [InlineData("rescale", "l2")]
    [InlineData("trim_scope", "layer")]
    public void Unknown_choice_is_refused_with_one_line_naming_the_parameter(string name, string value)
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<InvalidDataException>(() => MergeMethods.Get("ties").Merge(TiesInputs(P((name, value)))));
        Assert.Contains($"'{name}'", ex.Message);
        Assert.Contains(value, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
        var ex2 = Assert.Throws<InvalidDataException>(() => ParameterValues.Validate(MergeMethods.Get("ties"), P((name, value)), []));
        Assert.Contains($"'{name}'", ex2.Message);
    }

    [Fact]
    public void Validate_refuses_unknown_and_misplaced_parameters_and_accepts_mergekit_booleans()
    {
        var ties = MergeMethods.Get("ties");
        Assert.Contains("'gamma'", Assert.Throws<InvalidDataException>(() => ParameterValues.Validate(ties, P(("gamma", 0.1)), [])).Message);
        Assert.Contains("'lambda'", Assert.Throws<InvalidDataException>(() => ParameterValues.Validate(ties, MergeParameters.Empty, [P(("lambda", 0.5))])).Message);
        Assert.Contains("'normalize'", Assert.Throws<InvalidDataException>(() => ParameterValues.Validate(ties, P(("normalize", "yes")), [])).Message);
        ParameterValues.Validate(ties, P(("rescale", true), ("flavor", "peft"), ("lambda", 0.5)), [P(("weight", 0.5), ("density", 0.2))]);
        Assert.Equal(RescaleRule.L1, TaskVectorOptions.Resolve(((Amalgam.Merging.Methods.TaskVectorMethod)ties).Recipe, P(("rescale", true))).Rescale);
    }

    [Fact]
    public void Flavors_set_the_documented_defaults_and_explicit_values_win()
    {
        var ties = ((Amalgam.Merging.Methods.TaskVectorMethod)MergeMethods.Get("ties")).Recipe;
        var dare = ((Amalgam.Merging.Methods.TaskVectorMethod)MergeMethods.Get("dare_ties")).Recipe;
        Assert.Equal(new TaskVectorOptions(Flavor.Mergekit, ConsensusRule.Sum, ConsensusInput.Weighted, DivisorRule.Weights, true, RescaleRule.None, TrimScope.Tensor, 1.0),
            TaskVectorOptions.Resolve(ties, MergeParameters.Empty));
        Assert.Equal(new TaskVectorOptions(Flavor.Peft, ConsensusRule.Sum, ConsensusInput.Unweighted, DivisorRule.Count, true, RescaleRule.InverseDensity, TrimScope.Tensor, 1.0),
            TaskVectorOptions.Resolve(dare, P(("flavor", "peft"))));
        Assert.Equal(new TaskVectorOptions(Flavor.FusionBench, ConsensusRule.Sum, ConsensusInput.Unweighted, DivisorRule.None, false, RescaleRule.None, TrimScope.Model, 0.3),
            TaskVectorOptions.Resolve(ties, P(("flavor", "fusion_bench"))));
        Assert.Equal(0.5, TaskVectorOptions.Resolve(ties, P(("flavor", "fusion_bench"), ("lambda", 0.5))).Lambda);
        Assert.Null(MergeMethods.Get("ties").CreatePass(MergeParameters.Empty, 2));
        Assert.NotNull(MergeMethods.Get("ties").CreatePass(P(("flavor", "fusion_bench")), 2));
        Assert.Null(MergeMethods.Get("ties").CreatePass(P(("flavor", "fusion_bench"), ("trim_scope", "tensor")), 2));
    }

    [Fact]
    public void Whole_model_trim_needs_one_density_per_model()
    {
        using var scope = NewDisposeScope();
        var pass = MergeMethods.Get("ties").CreatePass(P(("trim_scope", "model")), 1)!;
        var b = zeros(3, 3);
        pass.Observe(0, new("a", b, [ones(3, 3)], [P(("density", 0.5))], MergeParameters.Empty));
        var ex = Assert.Throws<InvalidDataException>(() => pass.Observe(0, new("b", b, [ones(3, 3)], [P(("density", 0.6))], MergeParameters.Empty)));
        Assert.Contains("'density'", ex.Message);
    }

    [Fact]
    public void Whole_model_trim_breaks_ties_by_tensor_name_then_index_whatever_the_stream_order()
    {
        using var scope = NewDisposeScope();
        // all |δ| equal: 12 entries, density 0.5 → the 6 kept are b[0..3] ("a" < "b") then... a first: a has 4, b has 8
        var tensors = new (string Name, Tensor Delta)[] { ("b", full([8], -2.0)), ("a", full([4], 2.0)) };
        foreach (var order in new[] { new[] { 0, 1 }, new[] { 1, 0 } })
        {
            var pass = (WholeModelTopK)MergeMethods.Get("magnitude_prune").CreatePass(P(("trim_scope", "model")), 1)!;
            for (int r = 0; r < pass.Rounds; r++)
            {
                foreach (var i in order)
                    pass.Observe(r, new(tensors[i].Name, zeros_like(tensors[i].Delta), [tensors[i].Delta], [P(("density", 0.5))], MergeParameters.Empty));
                pass.EndRound(r);
            }
            Assert.Equal(new double[] { 1, 1, 1, 1 }, pass.Mask("a", 0, tensors[1].Delta).data<float>().Select(x => (double)x).ToArray());
            Assert.Equal(new double[] { 1, 1, 0, 0, 0, 0, 0, 0 }, pass.Mask("b", 0, tensors[0].Delta).data<float>().Select(x => (double)x).ToArray());
        }
    }
}
