// Foundation benchmarks. Every figure is a ratio against a baseline measured in the same run, because the
// machines are shared and noisy. Run: dotnet run --project bench/Amalgam.Bench -c Release [-- --quick]
using System.Diagnostics;
using System.Text.Json;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Tensors;
using static TorchSharp.torch;

bool quick = args.Contains("--quick");
int reps = quick ? 3 : 7;
manual_seed(0);

// A random model big enough for the kernels to dominate: 4 layers, hidden 512, GQA 8/2, vocab 4096.
var config = JsonSerializer.Deserialize<DecoderConfig>("""
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 4096, "hidden_size": 512,
 "intermediate_size": 1376, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0}
""")!;
config.Validate();
using var model = new CausalLM(config, ScalarType.Float32);
using (no_grad())
    foreach (var (_, p) in model.named_parameters()) p.copy_(randn(p.shape) * 0.02f);

Console.WriteLine($"model: {config.NumHiddenLayers} layers, hidden {config.HiddenSize}, vocab {config.VocabSize}; {get_num_threads()} threads; median of {reps}");

// 1. Decoding 32 tokens after a 64-token prompt: KV cache vs recomputing the whole prefix every step (baseline).
long[] prompt = Enumerable.Range(0, 64).Select(i => (long)(i * 37 % 4096)).ToArray();
int newTokens = quick ? 8 : 32;
double cached = Median(reps, () => GreedyDecoder.Generate(model, [prompt], newTokens));
double recompute = Median(reps, () =>
{
    var seq = prompt.ToList();
    using var _ = inference_mode();
    for (int i = 0; i < newTokens; i++)
    {
        using var scope = NewDisposeScope();
        var logits = model.forward(new DecoderInput(tensor(seq.ToArray(), [1, seq.Count]), LastPositionOnly: true)).Logits;
        seq.Add(logits[0, 0].argmax().item<long>());
    }
});
Report($"greedy decoding, {newTokens} tokens after {prompt.Length}: KV cache vs full recompute", cached, recompute);

// 2. A rank-16 all-linear LoRA attached in factored form vs the bare base (batch 8 × 64 tokens).
var ids = randint(0, 4096, [8, 64]);
double bare = Median(reps, () => { using var _ = inference_mode(); model.forward(new DecoderInput(ids)).Logits.Dispose(); });
var factors = model.Linears.Where(l => l.Key != CausalLM.OutputLayer)
    .ToDictionary(l => l.Key, l => (randn(16, l.Value.InFeatures) * 0.02f, randn(l.Value.OutFeatures, 16) * 0.02f));
var lora = JsonSerializer.Deserialize<LoraConfig>("""{"r": 16, "lora_alpha": 32, "target_modules": "all-linear"}""")!;
using var adapter = new LoraAdapter("bench", lora, factors);
double adapted;
using (adapter.AttachTo(model))
    adapted = Median(reps, () => { using var _ = inference_mode(); model.forward(new DecoderInput(ids)).Logits.Dispose(); });
Report("forward 8×64 with a rank-16 all-linear LoRA attached vs bare base", adapted, bare);

// 3. Loading every tensor of a checkpoint through TensorStore vs reading the file's bytes (baseline).
string dir = Path.Combine(Path.GetTempPath(), "amalgam-bench-" + Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(dir);
try
{
    string file = Path.Combine(dir, "model.safetensors");
    SafeTensorsWriter.Save(file, model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter));
    double raw = Median(reps, () => File.ReadAllBytes(file));
    double load = Median(reps, () =>
    {
        using var store = TensorStore.Open(file);
        foreach (var name in store.Names) store.Load(name).Dispose();
    });
    Report($"load all tensors ({new FileInfo(file).Length / 1e6:F0} MB) via TensorStore vs File.ReadAllBytes", load, raw);
}
finally
{
    Directory.Delete(dir, recursive: true);
}

static double Median(int reps, Action action)
{
    action(); // warm-up
    var times = new List<double>();
    for (int i = 0; i < reps; i++)
    {
        var sw = Stopwatch.StartNew();
        action();
        times.Add(sw.Elapsed.TotalMilliseconds);
    }
    times.Sort();
    return times[times.Count / 2];
}

static void Report(string what, double measured, double baseline) =>
    Console.WriteLine($"{what}: {measured:F1} ms vs {baseline:F1} ms = {measured / baseline:F2}x");
