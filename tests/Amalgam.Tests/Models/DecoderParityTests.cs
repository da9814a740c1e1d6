using Amalgam.Experts;
using Amalgam.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Models;

/// <summary>Logits against the independent float64 PyTorch reference (tests/Golden/generate.py).</summary>
public class DecoderParityTests
{
    const double Tolerance = 1e-4;
    // bfloat16 weights: matmuls run in bf16 (8 bits of mantissa), the reference in float64 on the same weights.
    const double Bf16Tolerance = 0.1;

    public static TheoryData<string> CaseNames() => new(TestData.Cases.Select(c => c.Name));

    /// <summary>
    /// Cases whose rope does not depend on the forward's length: with dynamic or longrope scaling a batch rotates
    /// every row by the longest row's length (as transformers does), so only single rows match the per-sequence
    /// goldens (see ArchitectureParityTests).
    /// </summary>
    public static TheoryData<string> BatchableCaseNames() =>
        new(TestData.Cases.Where(c => !DecoderConfig.Load(TestData.Golden(c.Model)).Scaling.DependsOnLength).Select(c => c.Name));

    static (CausalLM Model, LoraAdapter? Adapter) Load(TestData.GoldenCase c)
    {
        var model = CheckpointLoader.Load(TestData.Golden(c.Model));
        LoraAdapter? adapter = null;
        if (c.Adapter is not null)
        {
            adapter = LoraAdapter.Load(TestData.Golden(c.Adapter), model);
            adapter.AttachTo(model);
        }
        return (model, adapter);
    }

    static double MaxAbsDiff(Tensor actual, float[][] expected)
    {
        var e = tensor(expected.SelectMany(r => r).ToArray(), [expected.Length, expected[0].Length]);
        return (actual.to(ScalarType.Float64) - e.to(ScalarType.Float64)).abs().max().item<double>();
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Every_position_matches_the_reference(string name)
    {
        var c = TestData.Case(name);
        var (model, adapter) = Load(c);
        using var _m = model;
        using var _a = adapter;
        double tol = model.Dtype == ScalarType.BFloat16 ? Bf16Tolerance : Tolerance;
        for (int s = 0; s < c.Sequences.Length; s++)
        {
            using var scope = NewDisposeScope();
            var logits = model.Logits(c.Sequences[s]);
            Assert.Equal(ScalarType.Float32, logits.dtype);
            double diff = MaxAbsDiff(logits, c.Logits[s]);
            Assert.True(diff <= tol, $"{name} sequence {s}: max |Δlogit| = {diff:G3} > {tol}");
        }
    }

    [Theory]
    [InlineData("llama_gqa", true)]
    [InlineData("llama_gqa", false)]
    [InlineData("qwen2_tied+lora_all", true)]
    [InlineData("llama_gqa+lora_rslora", false)]
    public void A_padded_batch_gives_each_row_its_own_logits(string name, bool leftPadding)
    {
        var c = TestData.Case(name);
        var (model, adapter) = Load(c);
        using var _m = model;
        using var _a = adapter;
        int rows = c.Sequences.Length, width = c.Sequences.Max(s => s.Length);
        var ids = new long[rows * width];
        var mask = new long[rows * width];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < c.Sequences[r].Length; i++)
            {
                int at = r * width + (leftPadding ? width - c.Sequences[r].Length : 0) + i;
                ids[at] = c.Sequences[r][i];
                mask[at] = 1;
            }
        using var inference = inference_mode();
        using var scope = NewDisposeScope();
        var logits = model.forward(new DecoderInput(tensor(ids, [rows, width]), tensor(mask, [rows, width]))).Logits;
        for (int r = 0; r < rows; r++)
        {
            int len = c.Sequences[r].Length;
            var real = logits[r].narrow(0, leftPadding ? width - len : 0, len);
            double diff = MaxAbsDiff(real, c.Logits[r]);
            Assert.True(diff <= Tolerance, $"row {r}: max |Δlogit| = {diff:G3}");
        }
    }

    [Theory]
    [InlineData("llama_gqa")]
    [InlineData("qwen2_tied")]
    [InlineData("llama_gqa+lora_all")]
    public void Incremental_decoding_through_the_cache_matches_the_full_pass(string name)
    {
        var c = TestData.Case(name);
        var (model, adapter) = Load(c);
        using var _m = model;
        using var _a = adapter;
        var seq = c.Sequences[2];
        using var inference = inference_mode();
        using var cache = new KvCache(model.Config.NumHiddenLayers);
        // A 3-token prefix, then one token at a time.
        var rows = new List<float[]>();
        using (var scope = NewDisposeScope())
        {
            var first = model.forward(new DecoderInput(tensor(seq[..3], [1, 3]), Cache: cache)).Logits[0];
            for (int i = 0; i < 3; i++) rows.Add(first[i].data<float>().ToArray());
        }
        for (int i = 3; i < seq.Length; i++)
        {
            using var scope = NewDisposeScope();
            rows.Add(model.forward(new DecoderInput(tensor(new[] { seq[i] }, [1, 1]), Cache: cache)).Logits[0, 0].data<float>().ToArray());
        }
        Assert.Equal(seq.Length, cache.Length);
        for (int i = 0; i < seq.Length; i++)
            for (int v = 0; v < rows[i].Length; v++)
                Assert.True(Math.Abs(rows[i][v] - c.Logits[2][i][v]) <= Tolerance, $"position {i} token {v}: {rows[i][v]} vs {c.Logits[2][i][v]}");
    }

    [Theory]
    [MemberData(nameof(BatchableCaseNames))]
    public void Batched_greedy_decoding_matches_the_reference(string name)
    {
        var c = TestData.Case(name);
        var (model, adapter) = Load(c);
        using var _m = model;
        using var _a = adapter;
        var generated = GreedyDecoder.Generate(model, c.Sequences, maxNewTokens: c.Greedy[0].Length);
        for (int r = 0; r < c.Sequences.Length; r++) Assert.Equal(c.Greedy[r], generated[r]);
    }

    [Fact]
    public void Sharded_and_single_file_checkpoints_load_the_same_weights()
    {
        using var single = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        using var sharded = CheckpointLoader.Load(TestData.Golden("llama_gqa_sharded"));
        var a = single.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in sharded.named_parameters()) Assert.True(p.equal(a[name]).all().item<bool>(), name);
        Assert.Equal(a.Count, sharded.named_parameters().Count());
    }

    [Fact]
    public void A_forward_leaves_no_live_tensors_behind()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("qwen2_tied"));
        using var adapter = LoraAdapter.Load(TestData.Golden("qwen2_tied.lora_all"), model);
        using var attached = adapter.AttachTo(model);
        var seq = TestData.Case("qwen2_tied").Sequences[0];
        model.Logits(seq).Dispose(); // warm-up: lazily created state must not count
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++) model.Logits(seq).Dispose();
        var generated = GreedyDecoder.Generate(model, [seq, seq[..2]], 4);
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.Equal(4, generated[0].Count);
    }

    [Fact]
    public void The_bf16_checkpoint_computes_in_bf16_and_returns_float32_logits()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_bf16"));
        Assert.Equal(ScalarType.BFloat16, model.Dtype);
        using var logits = model.Logits([5, 6, 7]);
        Assert.Equal(ScalarType.Float32, logits.dtype);
    }
}
