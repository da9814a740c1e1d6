using System.Text.Json;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Tests.Models;

/// <summary>
/// Mixtral's sparse-MoE decoder against the independent float64 PyTorch reference of transformers'
/// MixtralForCausalLM (tests/Golden/moe/generate.py).
/// </summary>
public class MixtralTests
{
    public static string Moe(string name) => Path.Combine(TestData.RepoRoot, "tests", "Golden", "moe", name);

    public sealed record LogitsCase(string Name, long[][] Sequences, float[][][] Logits);

    public static JsonElement Cases() => JsonDocument.Parse(File.ReadAllText(Moe("cases.json"))).RootElement;

    static LogitsCase Case(string name)
    {
        var c = Cases().GetProperty("mixtral").EnumerateArray().Single(x => x.GetProperty("name").GetString() == name);
        return new(name, c.GetProperty("sequences").Deserialize<long[][]>()!, c.GetProperty("logits").Deserialize<float[][][]>()!);
    }

    /// <summary>max |a − e|, or with <paramref name="relative"/> max |a − e| / (1 + |e|).</summary>
    public static double MaxAbsDiff(Tensor actual, float[][] expected, bool relative = false)
    {
        using var scope = NewDisposeScope();
        var e = tensor(expected.SelectMany(r => r).ToArray(), [expected.Length, expected[0].Length]).to(ScalarType.Float64);
        var d = (actual.to(ScalarType.Float64) - e).abs();
        return (relative ? d / (e.abs() + 1) : d).max().item<double>();
    }

    [Theory]
    [InlineData("mixtral", ScalarType.Float32, 1e-5)]
    [InlineData("mixtral_top1", ScalarType.Float32, 1e-5)]
    // Relative: the router's softmax runs in float32 (as transformers'), and the logits come back as float32.
    [InlineData("mixtral", ScalarType.Float64, 1e-6)]
    [InlineData("mixtral_top1", ScalarType.Float64, 1e-6)]
    public void Every_position_matches_the_reference(string name, ScalarType dtype, double tolerance)
    {
        var c = Case(name);
        using var model = CheckpointLoader.Load(Moe(name), dtype);
        for (int s = 0; s < c.Sequences.Length; s++)
        {
            using var scope = NewDisposeScope();
            double diff = MaxAbsDiff(model.Logits(c.Sequences[s]), c.Logits[s], relative: dtype == ScalarType.Float64);
            Assert.True(diff <= tolerance, $"{name} ({dtype}) sequence {s}: max |Δlogit| = {diff:G3} > {tolerance}");
        }
    }

    [Fact]
    public void The_config_takes_MixtralConfig_defaults_and_counts_the_experts()
    {
        var top2 = DecoderConfig.Load(Moe("mixtral"));
        Assert.True(top2.IsMixtral);
        Assert.Equal((4, 2), (top2.NumLocalExperts, top2.NumExpertsPerToken));
        var top1 = DecoderConfig.Load(Moe("mixtral_top1"));  // no rms_norm_eps, no rope_theta
        Assert.Equal((1e-5, 1e6), (top1.RmsNormEps, top1.RopeTheta));
        Assert.Equal((3, 1), (top1.NumLocalExperts, top1.NumExpertsPerToken));
        // embeddings + lm_head + per layer (q, k, v, o, 2 norms, router, 4 × 3 expert matrices) + final norm
        long h = 32, i = 24, kv = 16, v = 64;
        long layer = h * h + 2 * h * kv + h * h + 2 * h + h * 4 + 4 * 3 * h * i;
        Assert.Equal(2 * v * h + 2 * layer + h, top2.ParameterCount);
        using var model = CheckpointLoader.Load(Moe("mixtral"));
        Assert.Equal(top2.ParameterCount, model.parameters().Sum(p => p.numel()));
        Assert.Contains("model.layers.1.block_sparse_moe.experts.3.w2", model.Linears.Keys);
        Assert.Contains("model.layers.0.block_sparse_moe.gate", model.Linears.Keys);
    }

    [Theory]
    [InlineData(4, "num_experts_per_tok")]  // 3 experts
    [InlineData(0, "num_experts_per_tok")]
    public void A_bad_expert_count_is_refused_naming_the_field(int topK, string field)
    {
        using var dir = new TestData.TempDir();
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Moe("mixtral_top1"), "config.json")))!;
        node["num_experts_per_tok"] = topK;
        File.WriteAllText(dir["config.json"], node.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => DecoderConfig.Load(dir.Path));
        Assert.Contains($"{field}:", e.Message);
    }

    [Fact]
    public void A_left_padded_batch_gives_each_row_its_own_logits()
    {
        var c = Case("mixtral");
        using var model = CheckpointLoader.Load(Moe("mixtral"));
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        int t = c.Sequences.Max(s => s.Length);
        var ids = zeros(c.Sequences.Length, t, ScalarType.Int64);
        var mask = zeros(c.Sequences.Length, t, ScalarType.Int64);
        for (int s = 0; s < c.Sequences.Length; s++)
        {
            int pad = t - c.Sequences[s].Length;
            ids[s].narrow(0, pad, c.Sequences[s].Length).copy_(tensor(c.Sequences[s]));
            mask[s].narrow(0, pad, c.Sequences[s].Length).fill_(1);
        }
        var logits = model.forward(new DecoderInput(ids, mask)).Logits;
        for (int s = 0; s < c.Sequences.Length; s++)
        {
            int n = c.Sequences[s].Length;
            double diff = MaxAbsDiff(logits[s].narrow(0, t - n, n), c.Logits[s]);
            Assert.True(diff <= 1e-5, $"row {s}: max |Δlogit| = {diff:G3}");
        }
    }
}

/// <summary>The sparse-MoE forward (gathers, index_add) leaves no tensors behind.</summary>
[Collection(nameof(Amalgam.Tests.Tensors.TensorCountCollection))]
public class MixtralLeakTests
{
    static long Live()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return Tensor.TotalCount;
    }

    [Fact]
    public void The_forward_frees_every_tensor_it_makes()
    {
        using var model = CheckpointLoader.Load(MixtralTests.Moe("mixtral"));
        long[] ids = [1, 60, 3, 3, 44, 18, 27, 50, 11, 8, 31, 6];
        using (var warm = model.Logits(ids)) { }
        long before = Live();
        using (var logits = model.Logits(ids)) { }
        Assert.Equal(before, Live());
    }
}
