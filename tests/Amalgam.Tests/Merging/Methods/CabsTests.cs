using Amalgam.Merging;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging.Methods;

/// <summary>cabs's order and n:m checks (its numbers are pinned by the goldens).</summary>
public class CabsTests
{
    static MergeTensorInputs Inputs(IReadOnlyList<MergeParameters> perModel, MergeParameters global, string[] names) =>
        new("model.layers.0.mlp.up_proj.weight", zeros(2, 8), [ones(2, 8), full(2, 8, 2.0)], perModel, global)
        { ModelNames = names, BaseName = "/m/base" };

    static MergeParameters P(params (string, object)[] values) => new(values.ToDictionary(v => v.Item1, v => v.Item2));

    static string Refusal(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        return Assert.Throws<InvalidDataException>(() => MergeMethods.Get("cabs").Merge(inputs)).Message;
    }

    [Fact]
    public void The_first_model_in_order_takes_its_entries_and_the_next_one_only_what_is_left()
    {
        using var scope = NewDisposeScope();
        // 1:2 blocks: every entry of a block is equal, so the lower index is taken first (ties), the other goes to the next model.
        var pm = new[] { P(("n_val", 1.0), ("m_val", 2.0)), P(("n_val", 1.0), ("m_val", 2.0)) };
        var merged = MergeMethods.Get("cabs").Merge(Inputs(pm, P(("pruning_order", new List<string> { "/m/b", "/m/base", "/m/a" })), ["/m/a", "/m/b"]));
        // b (2.0) first: even positions; a (1.0): odd positions
        Assert.Equal(Enumerable.Range(0, 16).Select(i => i % 2 == 0 ? 2.0f : 1.0f), merged.reshape(-1).data<float>().ToArray());
        var sorted = MergeMethods.Get("cabs").Merge(Inputs(pm, MergeParameters.Empty, ["/m/a", "/m/b"]));
        Assert.Equal(Enumerable.Range(0, 16).Select(i => i % 2 == 0 ? 1.0f : 2.0f), sorted.reshape(-1).data<float>().ToArray());
    }

    [Fact]
    public void Orders_and_ratios_mergekit_would_silently_change_are_refused()
    {
        var pm = new[] { MergeParameters.Empty, MergeParameters.Empty };
        Assert.StartsWith("parameter 'pruning_order': '/m/a' is missing",
            Refusal(Inputs(pm, P(("pruning_order", new List<string> { "/m/b" })), ["/m/a", "/m/b"])));
        Assert.StartsWith("parameter 'pruning_order': '/m/c' is not one of the merged models",
            Refusal(Inputs(pm, P(("pruning_order", new List<string> { "/m/a", "/m/c" })), ["/m/a", "/m/b"])));
        Assert.StartsWith("parameter 'pruning_order': '/m/a' is named twice",
            Refusal(Inputs(pm, P(("pruning_order", new List<string> { "/m/a", "/m/a", "/m/b" })), ["/m/a", "/m/b"])));
        Assert.Contains("model '/m/a' has n_val without m_val",
            Refusal(Inputs([P(("n_val", 1.0)), MergeParameters.Empty], MergeParameters.Empty, ["/m/a", "/m/b"])));
        Assert.Contains("default_m_val without default_n_val",
            Refusal(Inputs(pm, P(("default_m_val", 4.0)), ["/m/a", "/m/b"])));
        Assert.Contains("n = 5 is larger than m = 4",
            Refusal(Inputs([P(("n_val", 5.0), ("m_val", 4.0)), MergeParameters.Empty], MergeParameters.Empty, ["/m/a", "/m/b"])));
    }
}
