using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Tests.Mixing;

/// <summary>Batched forwards where every row mixes its own experts, against the independent goldens.</summary>
public class ExpertLibraryTests
{
    static readonly string[] Adapters = ["llama_gqa.lora_qv", "llama_gqa.lora_all", "llama_gqa.lora_rslora"];

    static (CausalLM, List<LoraAdapter>) Load()
    {
        var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        return (model, Adapters.Select(a => LoraAdapter.Load(TestData.Golden(a), model)).ToList());
    }

    static (Tensor Ids, Tensor Mask, int Width) LeftPadded(long[][] sequences)
    {
        int rows = sequences.Length, width = sequences.Max(s => s.Length);
        var ids = new long[rows * width];
        var mask = new long[rows * width];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < sequences[r].Length; i++)
            {
                ids[r * width + width - sequences[r].Length + i] = sequences[r][i];
                mask[r * width + width - sequences[r].Length + i] = 1;
            }
        return (tensor(ids, [rows, width]), tensor(mask, [rows, width]), width);
    }

    // copies = 3: the library holds every adapter three times, so a top-1 row keeps at most a quarter of each
    // layer's rank and the forward takes the per-row compacted path (copies = 1: the dense path).
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Each_row_with_its_own_top1_expert_matches_the_reference_for_that_adapter(int copies)
    {
        var (model, adapters) = Load();
        using var _ = model;
        using var library = new ExpertLibrary(model, Enumerable.Repeat(adapters, copies).SelectMany(a => a).ToList());
        var sequences = TestData.Case("llama_gqa").Sequences;
        var (ids, mask, width) = LeftPadded(sequences);
        using var inference = inference_mode();
        using var scope = NewDisposeScope();
        var weights = eye(3, 3 * copies); // row r uses expert r
        using var mixing = new FixedMixing(weights);
        var logits = model.forward(new DecoderInput(ids, mask, Mixing: mixing)).Logits;
        for (int r = 0; r < 3; r++)
        {
            var golden = TestData.Case("llama_gqa+" + Adapters[r].Split('.')[1]).Logits[r];
            var real = logits[r].narrow(0, width - sequences[r].Length, sequences[r].Length);
            var expected = tensor(golden.SelectMany(x => x).ToArray(), [golden.Length, golden[0].Length]);
            double diff = (real - expected).abs().max().item<float>();
            Assert.True(diff <= 1e-4, $"row {r} ({Adapters[r]}): max |Δlogit| = {diff}");
        }
        foreach (var a in adapters) a.Dispose();
    }

    [Fact]
    public void A_per_token_half_and_half_mixture_equals_merging_the_halved_updates()
    {
        var (model, adapters) = Load();
        using var _ = model;
        long[] seq = TestData.Case("llama_gqa").Sequences[0];
        using var inference = inference_mode();
        Tensor mixed;
        using (var library = new ExpertLibrary(model, adapters))
        using (var scope = NewDisposeScope())
        {
            var w = tensor(new float[] { 0.5f, 0.5f, 0f }).expand(1, seq.Length, 3); // per token, dense path
            using var mixing = new FixedMixing(w);
            mixed = model.forward(new DecoderInput(tensor(seq).unsqueeze(0), Mixing: mixing)).Logits.MoveToOuterDisposeScope();
        }
        var halves = adapters.Take(2).SelectMany(a => a.Deltas.Select(d => (d.Key, new LowRankDelta(d.Value.A, d.Value.B, d.Value.Scale / 2)))).ToList();
        foreach (var (m, d) in halves) model.Linears[m].Attach(d);
        using var merged = model.Logits(seq);
        foreach (var (m, d) in halves) model.Linears[m].Detach(d);
        Assert.True((mixed[0] - merged).abs().max().item<float>() <= 1e-4);
        using var plain = model.Logits(seq); // uninstalled: the base again
        using var baseOnly = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        using var reference = baseOnly.Logits(seq);
        Assert.True(plain.equal(reference).all().item<bool>());
        mixed.Dispose();
        foreach (var a in adapters) a.Dispose();
    }

    [Fact]
    public void Greedy_decoding_with_a_different_expert_per_row_matches_each_adapter_alone()
    {
        var (model, adapters) = Load();
        using var _ = model;
        using var library = new ExpertLibrary(model, adapters);
        var sequences = TestData.Case("llama_gqa").Sequences;
        using var weights = eye(3);
        using var mixing = new FixedMixing(weights);
        var generated = GreedyDecoder.Generate(model, sequences, 6, mixing: mixing);
        for (int r = 0; r < 3; r++)
            Assert.Equal(TestData.Case("llama_gqa+" + Adapters[r].Split('.')[1]).Greedy[r], generated[r]);
        foreach (var a in adapters) a.Dispose();
    }

    [Fact]
    public void The_gradient_of_a_loss_through_the_mixed_model_with_respect_to_the_weights_matches_finite_differences()
    {
        var (model, adapters) = Load();
        using var _ = model;
        using var library = new ExpertLibrary(model, adapters);
        var sequences = TestData.Case("llama_gqa").Sequences;
        int length = sequences.Min(s => s.Length);
        using var scope = NewDisposeScope();
        var ids = tensor(sequences.SelectMany(s => s.Take(length)).ToArray(), [sequences.Length, length]);
        Tensor Loss(Tensor w)
        {
            using var mixing = new FixedMixing(w);
            var logits = model.forward(new DecoderInput(ids, Mixing: mixing)).Logits;
            return nn.functional.cross_entropy(logits.narrow(1, 0, length - 1).reshape(-1, logits.shape[2]), ids.narrow(1, 1, length - 1).reshape(-1));
        }
        // One-hot rows, as in decoding: the experts a row does not use must still get their gradient.
        var weights = eye(3).requires_grad_(true);
        Loss(weights).backward();
        var grad = weights.grad!.clone();
        const double eps = 1e-2;
        using var noGrad = no_grad();
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < 3; k++)
            {
                var plus = eye(3); plus[r, k] = plus[r, k] + eps;
                var minus = eye(3); minus[r, k] = minus[r, k] - eps;
                double fd = (Loss(plus).item<float>() - Loss(minus).item<float>()) / (2 * eps);
                double g = grad[r, k].item<float>();
                Assert.True(Math.Abs(fd - g) <= 2e-3 + 1e-2 * Math.Abs(fd), $"row {r}, expert {k}: autograd {g}, finite difference {fd}");
            }
        Assert.True(grad.abs().min().item<float>() > 0);
        foreach (var a in adapters) a.Dispose();
    }

    /// <summary>Top-1 per row and per module: module m of row r uses expert (r + m's index) mod K.</summary>
    sealed class PerModuleTopOne(IReadOnlyList<string> modules, int rows, int experts) : IMixingPolicy
    {
        readonly Dictionary<string, Tensor> weights = modules.Select((m, i) => (m, nn.functional.one_hot(
            tensor(Enumerable.Range(0, rows).Select(r => (long)((r + i) % experts)).ToArray()), experts).to(ScalarType.Float32))).ToDictionary();
        public int Expert(string module, int row) => (row + modules.ToList().IndexOf(module)) % experts;
        public Tensor Weights(string module, Tensor x) => weights[module];
    }

    [Fact]
    public void Per_row_mixing_with_different_weights_per_module_equals_attaching_each_rows_experts()
    {
        var (model, adapters) = Load();
        using var _ = model;
        var experts = Enumerable.Repeat(adapters, 3).SelectMany(a => a).ToList();   // a top-1 row keeps ≤ ¼ of the rank
        var sequences = TestData.Case("llama_gqa").Sequences;
        var (ids, mask, width) = LeftPadded(sequences);
        using var inference = inference_mode();
        using var scope = NewDisposeScope();
        var policy = new PerModuleTopOne(model.Linears.Keys.ToList(), sequences.Length, experts.Count);
        Tensor logits;
        using (var library = new ExpertLibrary(model, experts))
            logits = model.forward(new DecoderInput(ids, mask, Mixing: policy)).Logits;
        for (int r = 0; r < sequences.Length; r++)
        {
            // Reference: row r alone, each module with its own expert's delta attached.
            var attached = model.Linears.Keys
                .Select(m => (m, experts[policy.Expert(m, r)].Deltas.GetValueOrDefault(m)))
                .Where(p => p.Item2 is not null).ToList();
            foreach (var (m, d) in attached) model.Linears[m].Attach(d!);
            using var expected = model.Logits(sequences[r]);
            foreach (var (m, d) in attached) model.Linears[m].Detach(d!);
            var real = logits[r].narrow(0, width - sequences[r].Length, sequences[r].Length);
            double diff = (real - expected).abs().max().item<float>();
            Assert.True(diff <= 1e-4, $"row {r}: max |Δlogit| = {diff}");
        }
        foreach (var a in adapters) a.Dispose();
    }
}
