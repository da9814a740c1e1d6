using Amalgam.Experts;
using Amalgam.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Models;

/// <summary>
/// Qwen3, Gemma 2/3, Phi-3, sliding windows shorter than the sequence and every rope scaling, against the
/// independent float64 reference (tests/Golden/generate.py; every position of every case is also checked in
/// <see cref="DecoderParityTests"/>). Sequences of 6, 9 and 14 tokens: longer than the windows (4) and, for dynamic
/// and longrope, than the original max positions (8), so greedy decoding crosses that length too.
/// </summary>
public class ArchitectureParityTests
{
    const double Tolerance = 1e-4;

    static readonly string[] NewModels = ["qwen3", "qwen2_window", "mistral_window", "gemma2", "gemma3", "phi3",
        "llama_rope_llama3", "llama_rope_linear", "llama_rope_dynamic", "qwen2_rope_yarn"];

    public static TheoryData<string> NewCases() => new(TestData.Cases.Where(c => NewModels.Contains(c.Model)).Select(c => c.Name));

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

    [Fact]
    public void Every_new_architecture_and_rope_scaling_has_a_base_and_an_all_linear_adapter_case()
    {
        foreach (var m in NewModels)
        {
            Assert.Contains(TestData.Cases, c => c.Model == m && c.Adapter is null);
            Assert.Contains(TestData.Cases, c => c.Model == m && c.Adapter == m + ".lora_all");
        }
    }

    [Theory]
    [MemberData(nameof(NewCases))]
    public void Greedy_decoding_of_each_sequence_matches_the_reference(string name)
    {
        // One row at a time: dynamic and longrope depend on the length of the forward, and the goldens decode each
        // sequence alone through a KV cache (earlier keys keep the rotation they were computed with).
        var c = TestData.Case(name);
        var (model, adapter) = Load(c);
        using var _m = model;
        using var _a = adapter;
        for (int r = 0; r < c.Sequences.Length; r++)
            Assert.Equal(c.Greedy[r], GreedyDecoder.Generate(model, [c.Sequences[r]], maxNewTokens: c.Greedy[r].Length)[0]);
    }

    [Theory]
    [InlineData("mistral_window")]
    [InlineData("qwen2_window+lora_all")]
    [InlineData("gemma2")]
    [InlineData("gemma3+lora_all")]
    [InlineData("phi3")]
    public void Decoding_through_the_cache_past_the_window_matches_the_full_pass(string name)
    {
        var c = TestData.Case(name);
        var (model, adapter) = Load(c);
        using var _m = model;
        using var _a = adapter;
        var seq = c.Sequences.MaxBy(s => s.Length)!;
        int s0 = Array.IndexOf(c.Sequences, seq);
        // phi3: a prefix past the 8 original positions, so every step rotates with the long factors, as the full pass.
        int prefix = name.StartsWith("phi3") ? 9 : 3;
        using var inference = inference_mode();
        using var cache = new KvCache(model.Config.NumHiddenLayers);
        var rows = new List<float[]>();
        using (var scope = NewDisposeScope())
        {
            var first = model.forward(new DecoderInput(tensor(seq[..prefix], [1, prefix]), Cache: cache)).Logits[0];
            for (int i = 0; i < prefix; i++) rows.Add(first[i].data<float>().ToArray());
        }
        for (int i = prefix; i < seq.Length; i++)
        {
            using var scope = NewDisposeScope();
            rows.Add(model.forward(new DecoderInput(tensor(new[] { seq[i] }, [1, 1]), Cache: cache)).Logits[0, 0].data<float>().ToArray());
        }
        for (int i = 0; i < seq.Length; i++)
            for (int v = 0; v < rows[i].Length; v++)
                Assert.True(Math.Abs(rows[i][v] - c.Logits[s0][i][v]) <= Tolerance, $"position {i} token {v}: {rows[i][v]} vs {c.Logits[s0][i][v]}");
    }

    [Theory]
    [InlineData("gemma2", true)]
    [InlineData("gemma3+lora_all", true)]
    [InlineData("mistral_window", false)]
    [InlineData("qwen3+lora_all", true)]
    [InlineData("phi3+lora_all", true)]
    public void A_padded_batch_gives_each_row_its_own_logits(string name, bool leftPadding)
    {
        var c = TestData.Case(name);
        var (model, adapter) = Load(c);
        using var _m = model;
        using var _a = adapter;
        // phi3's longrope follows the longest row; use only rows that are on the same side of 8 positions as it.
        var rowsUsed = Enumerable.Range(0, c.Sequences.Length).Where(r => !name.StartsWith("phi3") || c.Sequences[r].Length > 8).ToArray();
        int rows = rowsUsed.Length, width = rowsUsed.Max(r => c.Sequences[r].Length);
        var ids = new long[rows * width];
        var mask = new long[rows * width];
        for (int k = 0; k < rows; k++)
        {
            var s = c.Sequences[rowsUsed[k]];
            for (int i = 0; i < s.Length; i++)
            {
                int at = k * width + (leftPadding ? width - s.Length : 0) + i;
                ids[at] = s[i];
                mask[at] = 1;
            }
        }
        using var inference = inference_mode();
        using var scope = NewDisposeScope();
        var logits = model.forward(new DecoderInput(tensor(ids, [rows, width]), tensor(mask, [rows, width]))).Logits;
        for (int k = 0; k < rows; k++)
        {
            int len = c.Sequences[rowsUsed[k]].Length;
            var real = logits[k].narrow(0, leftPadding ? width - len : 0, len);
            double diff = MaxAbsDiff(real, c.Logits[rowsUsed[k]]);
            Assert.True(diff <= Tolerance, $"row {k}: max |Δlogit| = {diff:G3}");
        }
    }

    [Fact]
    public void A_gemma3_forward_with_an_adapter_leaves_no_live_tensors_behind()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("gemma3"));
        using var adapter = LoraAdapter.Load(TestData.Golden("gemma3.lora_all"), model);
        using var attached = adapter.AttachTo(model);
        var seq = TestData.Case("gemma3").Sequences[2];
        model.Logits(seq).Dispose();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++) model.Logits(seq).Dispose();
        var generated = GreedyDecoder.Generate(model, [seq, seq[..5]], 4);
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.Equal(4, generated[0].Count);
    }

    [Fact]
    public void Phi3_adapters_target_the_fused_projections()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("phi3"));
        using var adapter = LoraAdapter.Load(TestData.Golden("phi3.lora_all"), model);
        var modules = adapter.Deltas.Keys.Select(k => string.Join('.', k.Split('.')[3..])).Distinct().Order(StringComparer.Ordinal);
        Assert.Equal(["mlp.down_proj", "mlp.gate_up_proj", "self_attn.o_proj", "self_attn.qkv_proj"], modules);
        Assert.Equal(64, model.Linears["model.layers.0.self_attn.qkv_proj"].OutFeatures); // (2 + 2·1) heads · 16
        Assert.Equal(64, model.Linears["model.layers.1.mlp.gate_up_proj"].OutFeatures);   // 2 · 32
    }
}
