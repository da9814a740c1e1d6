using System.Text.Json;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Training;
using static TorchSharp.torch;

namespace Amalgam.Tests.Training;

public class TrainingTests
{
    static DecoderConfig TinyConfig() => JsonSerializer.Deserialize<DecoderConfig>("""
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 16, "hidden_size": 32, "intermediate_size": 64,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
         "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
        """)!;

    // Sequences "bos a b c ... eos" counting up from a random start: learnable, with a loss span after the prompt.
    static List<TokenSequence> Counting(int n, int seed, int lossFrom = 1)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ =>
        {
            int start = rng.Next(3, 9);
            return new TokenSequence([1, .. Enumerable.Range(start, 6).Select(i => (long)i), 2], lossFrom);
        }).ToList();
    }

    static readonly TrainingOptions Short = new() { Steps = 60, BatchSize = 16, LearningRate = 1e-2, WarmupSteps = 5, Seed = 3 };

    [Fact]
    public void The_schedule_warms_up_linearly_then_decays_by_cosine_to_the_floor()
    {
        var o = new TrainingOptions { Steps = 110, WarmupSteps = 10, LearningRate = 1.0, MinLearningRateRatio = 0.1 };
        Assert.Equal(0.1, o.LearningRateAt(0), 12);
        Assert.Equal(1.0, o.LearningRateAt(9), 12);
        Assert.Equal(1.0, o.LearningRateAt(10), 12);
        Assert.Equal(0.55, o.LearningRateAt(60), 12);
        Assert.Equal(0.1, o.LearningRateAt(110), 12);
    }

    [Fact]
    public void Loss_is_taken_only_on_the_span_after_LossFrom()
    {
        var (ids, mask, labels) = SequenceBatch.Build([new TokenSequence([1, 5, 6, 7, 2], 3), new TokenSequence([1, 9, 2], 2)], padId: 0);
        Assert.Equal(new long[] { 1, 5, 6, 7, 1, 9, 0, 0 }, ids.data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 0, 0 }, mask.data<long>().ToArray());
        Assert.Equal(new long[] { -100, -100, 7, 2, -100, 2, -100, -100 }, labels.data<long>().ToArray());
    }

    [Fact]
    public void Training_from_scratch_lowers_the_loss_and_is_deterministic_for_a_seed()
    {
        var data = Counting(200, 1);
        var a = BaseTrainer.Train(TinyConfig(), data, Short, padId: 0);
        var b = BaseTrainer.Train(TinyConfig(), data, Short, padId: 0);
        using var _a = a.Model;
        using var _b = b.Model;
        Assert.True(a.Log.TakeLast(5).Average(s => s.Loss) < 0.5 * a.Log.Take(5).Average(s => s.Loss), $"{a.Log[0].Loss} → {a.Log[^1].Loss}");
        Assert.Equal(a.Log.Select(s => s.Loss), b.Log.Select(s => s.Loss));
        Assert.All(a.Model.parameters(), p => Assert.False(p.requires_grad));
    }

    [Fact]
    public void LoRA_training_lowers_the_loss_on_targets_and_leaves_the_base_untouched()
    {
        var pre = BaseTrainer.Train(TinyConfig(), Counting(200, 1), Short with { Steps = 20 }, padId: 0);
        using var model = pre.Model;
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.clone());
        // A new task: counting DOWN after a 2-token prompt.
        var rng = new Random(5);
        var down = Enumerable.Range(0, 200).Select(_ =>
        {
            int start = rng.Next(9, 15);
            return new TokenSequence([1, 15, .. Enumerable.Range(0, 5).Select(i => (long)(start - i)), 2], 2);
        }).ToList();
        var config = JsonSerializer.Deserialize<LoraConfig>("""{"r": 4, "lora_alpha": 8, "target_modules": "all-linear"}""")!;
        var result = LoraTrainer.Train(model, config, "down", down, Short, padId: 0);
        using var adapter = result.Adapter;
        Assert.True(result.Log.TakeLast(5).Average(s => s.Loss) < 0.5 * result.Log.Take(5).Average(s => s.Loss), $"{result.Log[0].Loss} → {result.Log[^1].Loss}");
        Assert.Equal(14, adapter.Deltas.Count);
        Assert.All(adapter.Deltas.Values, d => Assert.True(d.B.abs().max().item<float>() > 0));
        foreach (var (name, p) in model.named_parameters()) Assert.True(p.equal(before[name]).all().item<bool>(), name);
        Assert.All(model.Linears.Values, l => Assert.Empty(l.Deltas));
    }

    [Fact]
    public void A_saved_checkpoint_loads_back_to_the_same_logits()
    {
        using var tmp = new TestData.TempDir();
        var trained = BaseTrainer.Train(TinyConfig(), Counting(50, 2), Short with { Steps = 5 }, padId: 0);
        using var model = trained.Model;
        CheckpointWriter.Save(model, tmp["ckpt"]);
        using var loaded = CheckpointLoader.Load(tmp["ckpt"]);
        using var x = model.Logits([1, 4, 5, 6]);
        using var y = loaded.Logits([1, 4, 5, 6]);
        Assert.True(x.equal(y).all().item<bool>());
        Assert.Equal("float32", DecoderConfig.Load(tmp["ckpt"]).TorchDtype);
        // a dense Llama's config.json gains no MoE fields (it used to carry num_local_experts: 8, num_experts_per_tok: 2)
        var written = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp["ckpt"], "config.json"))).RootElement;
        Assert.DoesNotContain(written.EnumerateObject(), p => p.Name is "num_local_experts" or "num_experts_per_tok" or "num_experts");
    }
}
