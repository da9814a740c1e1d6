// Batched mixed-expert decoding on the bundled suite, as throughput ratios against the base model measured in the
// same run. Run from the repo root: dotnet run --project bench/Amalgam.Bench.Mixing -c Release [-- --quick]
using System.Diagnostics;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using Amalgam.Tokenizers;
using Amalgam.Strategies;
using static TorchSharp.torch;

bool quick = args.Contains("--quick");
int reps = quick ? 2 : 9, newTokens = 16, rows = 32;
var suite = Suite.Load("suite");
var tokenizer = TokenizerLoader.Load(suite.BasePath);
using var model = CheckpointLoader.Load(suite.BasePath);
var experts = suite.HeldIn.Select(t => LoraAdapter.Load(t.ExpertPath!, model)).ToList();
int k = experts.Count;
// 32 prompts, row r from task r mod K (so every row wants a different expert than its neighbours).
var tasks = suite.HeldIn.ToList();
var prompts = Enumerable.Range(0, rows).Select(r => (IReadOnlyList<long>)tokenizer
    .Encode(suite.Prompt(suite.LoadSplit(tasks[r % k], Suite.Test)[r / k]), addBos: true).Select(i => (long)i).ToArray()).ToList();
long pad = tokenizer.PadId ?? 0;

Tensor Top(int kk)
{
    var w = zeros(rows, k);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < kk; j++) w[r, (r + j) % k] = 1.0f / kk;
    return w;
}

// The naive way: materialise each row's merged weights (fold its expert into W), decode that row alone, unfold.
void Naive()
{
    for (int r = 0; r < rows; r++)
    {
        var e = experts[r % k];
        var saved = e.Deltas.Keys.ToDictionary(m => m, m => model.Linears[m].Weight.clone());
        e.FoldInto(model);
        GreedyDecoder.Generate(model, [prompts[r]], newTokens, [], pad);
        using (no_grad()) foreach (var (m, w) in saved) { model.Linears[m].Weight.copy_(w); w.Dispose(); }
    }
}

// Twin-Merging: a shared task-arithmetic model with the experts' exclusive parts (rank 8) mixed per row by a dense
// softmax (fixed, seeded: what a router would give), factored; the naive way materialises each row's merge.
using var shared = ExpertMerge.ToModel(suite.BasePath, tasks.Select(t => t.ExpertPath!).ToList(), "task_arithmetic",
    new Dictionary<string, object> { ["lambda"] = 0.3 });
var exclusive = TwinMerging.Exclusive(model, shared, experts);
var twinWeights = nn.functional.softmax(randn(new long[] { rows, k }, generator: new Generator(7)) * 2, -1);
using var twinLibrary = new ExpertLibrary(shared, exclusive);

void NaiveTwin()
{
    for (int r = 0; r < rows; r++)
    {
        var modules = exclusive[0].Deltas.Keys.ToList();
        var saved = modules.ToDictionary(m => m, m => shared.Linears[m].Weight.clone());
        using (no_grad())
            foreach (var m in modules)
            {
                using var scope = NewDisposeScope();
                var merged = saved[m].clone();
                for (int e = 0; e < k; e++) merged.add_(exclusive[e].Deltas[m].Dense() * twinWeights[r, e].item<float>());
                shared.Linears[m].Weight.copy_(merged);
            }
        GreedyDecoder.Generate(shared, [prompts[r]], newTokens, [], pad);
        using (no_grad()) foreach (var (m, w) in saved) { shared.Linears[m].Weight.copy_(w); w.Dispose(); }
    }
}

using var library = new ExpertLibrary(model, experts);
var variants = new (string Name, Action Run)[]
{
    ("base alone", () => GreedyDecoder.Generate(model, prompts, newTokens, [], pad)),
    ("top-1 (a different expert per row)", () => { using var m = new FixedMixing(Top(1)); GreedyDecoder.Generate(model, prompts, newTokens, [], pad, m); }),
    ("top-2 mixture", () => { using var m = new FixedMixing(Top(2)); GreedyDecoder.Generate(model, prompts, newTokens, [], pad, m); }),
    ($"dense mixture of all {k}", () => { using var m = new FixedMixing(full(rows, k, 1.0 / k)); GreedyDecoder.Generate(model, prompts, newTokens, [], pad, m); }),
    ("Twin-Merging, factored", () => { using var m = new FixedMixing(twinWeights); GreedyDecoder.Generate(shared, prompts, newTokens, [], pad, m); }),
};
// Rounds interleave the variants so that machine noise hits them alike; each figure is a median over rounds.
var times = variants.Select(_ => new List<double>()).ToList();
foreach (var v in variants) v.Run(); // warm-up (JIT, allocator)
for (int round = 0; round < reps; round++)
    for (int i = 0; i < variants.Length; i++)
    {
        var sw = Stopwatch.StartNew();
        variants[i].Run();
        times[i].Add(sw.Elapsed.TotalSeconds);
    }
library.Dispose();
twinLibrary.Dispose();
var naiveTimes = new List<double>();
var naiveTwinTimes = new List<double>();
Naive();
NaiveTwin();
for (int round = 0; round < Math.Max(1, reps / 2); round++)
{
    var sw = Stopwatch.StartNew(); Naive(); naiveTimes.Add(sw.Elapsed.TotalSeconds);
    sw.Restart(); NaiveTwin(); naiveTwinTimes.Add(sw.Elapsed.TotalSeconds);
}

static double Median(List<double> t) { t.Sort(); return t[t.Count / 2]; }
double tokens = rows * newTokens, baseTime = Median(times[0]);
Console.WriteLine($"bundled base ({get_num_threads()} threads), {rows} prompts × {newTokens} new tokens, {k} experts, median of {reps} interleaved rounds");
for (int i = 0; i < variants.Length; i++)
    Console.WriteLine($"{variants[i].Name + ":",-36}{tokens / Median(times[i]),8:F0} tokens/s  {baseTime / Median(times[i]):F2}x of base");
Console.WriteLine($"{"naive per-row merged model:",-36}{tokens / Median(naiveTimes),8:F0} tokens/s  {baseTime / Median(naiveTimes):F2}x of base");
Console.WriteLine($"{"Twin-Merging, naive per-row merge:",-36}{tokens / Median(naiveTwinTimes),8:F0} tokens/s  {baseTime / Median(naiveTwinTimes):F2}x of base");
Console.WriteLine($"Twin-Merging factored / naive: {Median(naiveTwinTimes) / Median(times[^1]):F1}x the throughput");
foreach (var e in exclusive) e.Dispose();
foreach (var e in experts) e.Dispose();
