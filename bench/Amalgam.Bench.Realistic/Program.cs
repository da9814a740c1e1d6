// Realistic-size benchmark against PyTorch: a synthetic Llama of ~125M parameters (hidden 768, 12 layers, 12 heads,
// 4 KV heads, vocab 32000) in float32 and bfloat16, with and without a rank-16 all-linear adapter (unmerged):
// prefill of 128 tokens, greedy decoding tokens/s at batch 1 and 8, load time per GB; each against an eager
// transformers-style PyTorch forward (llama_eager.py, Debian's python3-torch) driven in the same run, rounds
// interleaved, medians. Then mixed-expert batches (8 rank-16 experts, one per row) as a ratio to the base.
// Run: dotnet run --project bench/Amalgam.Bench.Realistic -c Release [-- --rounds 3 --new 16 --threads N --quick]
//   --only load,prefill,decode,mixed   measure only these parts (default: all)
//   --keep DIR                          synthesise the checkpoints into DIR once and reuse them (kept afterwards)
//   --factors                           only the per-module cost of the mixture paths (per-row vs grouped) at these shapes
using System.Diagnostics;
using System.Text.Json;
using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using Amalgam.Runtime;
using static TorchSharp.torch;

string? Opt(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
if (Opt("--tiny") is { } tinyDir)
{
    // Per-step overhead on a tiny model: greedy decoding tokens/s (median of 9), batch 1 and 32, 32 new tokens.
    TorchThreads.Configure(Opt("--threads") is { } tt ? int.Parse(tt) : null);
    using var tiny = CheckpointLoader.Load(tinyDir);
    foreach (int batch in new[] { 1, 32 })
    {
        var prompts = Enumerable.Range(0, batch).Select(r => (IReadOnlyList<long>)Enumerable.Range(0, 24).Select(i => (long)((r * 31 + i * 7) % tiny.Config.VocabSize)).ToArray()).ToList();
        GreedyDecoder.Generate(tiny, prompts, 32);
        var times = Enumerable.Range(0, 9).Select(_ => { var sw = Stopwatch.StartNew(); GreedyDecoder.Generate(tiny, prompts, 32); return sw.Elapsed.TotalSeconds; }).Order().ToList();
        Console.WriteLine($"tiny decode batch {batch}: {batch * 32 / times[4]:0} tokens/s (median of 9)");
    }
    return;
}
if (args.Contains("--factors"))
{
    // The mixture's paths on one module at the 125M model's shapes: 8 rank-16 experts, one per row, one decoding
    // step, per-row compacted factors (what AddTo picks here) against the grouped per-expert path (Sparse).
    TorchThreads.Configure(Opt("--threads") is { } ft ? int.Parse(ft) : null);
    using var _ = inference_mode();
    foreach (var (inF, outF) in new[] { (768L, 768L), (768L, 2048L), (2048L, 768L) })
    {
        using var scope = NewDisposeScope();
        var g = new Generator(0);
        var deltas = Enumerable.Range(0, 8).Select(_ => (LowRankDelta?)new LowRankDelta(randn([16, inF], generator: g) * 0.02f, randn([outF, 16], generator: g) * 0.02f, 1.0)).ToList();
        using var stacked = new StackedFactors(deltas, inF, outF);
        foreach (int batch in new[] { 8, 32 })
        {
            var x = randn([batch, 1, inF], generator: g);
            var y = randn([batch, 1, outF], generator: g);
            var w = zeros(batch, 8);
            for (int r = 0; r < batch; r++) w[r, r % 8] = 1f;
            using var mixing = new FixedMixing(w);
            double Median(Func<Tensor> f)
            {
                for (int i = 0; i < 5; i++) f().Dispose();
                var t = Enumerable.Range(0, 41).Select(_ => { var sw = Stopwatch.StartNew(); f().Dispose(); return sw.Elapsed.TotalMilliseconds; }).Order().ToList();
                return t[20];
            }
            double perRow = Median(() => stacked.AddTo(y, x, w, mixing.Cache));
            double grouped = Median(() => { using var d = stacked.Sparse(x, w); return y + d; });
            var weight = randn([outF, inF], generator: g);
            double baseOnly = Median(() => nn.functional.linear(x, weight));
            Console.WriteLine($"[{outF}, {inF}] batch {batch}: per-row {perRow:0.000} ms, grouped {grouped:0.000} ms, the module's own linear {baseOnly:0.000} ms (medians of 41; load {File.ReadAllText("/proc/loadavg").Trim()})");
        }
    }
    return;
}
bool quick = args.Contains("--quick");
int rounds = Opt("--rounds") is { } rv ? int.Parse(rv) : 3;
int newTokens = Opt("--new") is { } nv ? int.Parse(nv) : 16;
var threads = TorchThreads.Configure(Opt("--threads") is { } tv ? int.Parse(tv) : null);
string python = Opt("--python") ?? "/usr/bin/python3";
string? keep = Opt("--keep");
string root = keep ?? Path.Combine(Opt("--dir") ?? Path.GetTempPath(), "amalgam-bench-realistic-" + Guid.NewGuid().ToString("N")[..8]);
var only = (Opt("--only") ?? "load,prefill,decode,mixed").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToHashSet();
bool Measures(string part) => only.Contains(part);
var config = JsonSerializer.Deserialize<DecoderConfig>(quick
    ? """{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 4096, "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 2048}"""
    : """{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000, "hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 12, "num_key_value_heads": 4, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 2048}""")!;
config.Validate();
const int PrefillTokens = 128, DecodePrompt = 16, Rank = 16, Experts = 8;

string Dir(string name) => Path.Combine(root, name);
LoraConfig AdapterConfig() => new() { R = Rank, LoraAlpha = Rank, TargetModules = JsonDocument.Parse("\"all-linear\"").RootElement.Clone() };

LoraAdapter RandomAdapter(CausalLM model, string name, Generator g)
{
    var factors = new Dictionary<string, (Tensor A, Tensor B)>();
    foreach (var (module, linear) in model.Linears)
    {
        if (module == CausalLM.OutputLayer) continue; // all-linear leaves the output layer out
        var w = linear.Weight;
        var a = (randn([Rank, w.shape[1]], generator: g) * 0.02f).DetachFromDisposeScope();
        var b = (randn([w.shape[0], Rank], generator: g) * 0.02f).DetachFromDisposeScope();
        factors[module] = (a, b);
    }
    return new LoraAdapter(name, AdapterConfig(), factors);
}

try
{
    Directory.CreateDirectory(root);
    bool synthesised = keep is not null && File.Exists(Path.Combine(Dir("bf16"), "model.safetensors")) && Directory.Exists(Dir($"expert{Experts - 1}"));
    if (!synthesised)
    {
        Console.WriteLine($"synthesising a {config.NumHiddenLayers}-layer Llama (hidden {config.HiddenSize}, vocab {config.VocabSize}) under {root}");
        using (var scope = NewDisposeScope())
        {
            var g = new Generator(0);
            using var f32 = new CausalLM(config, ScalarType.Float32);
            using (no_grad()) foreach (var (_, p) in f32.named_parameters()) p.copy_(randn(p.shape, generator: g) * 0.02f);
            CheckpointWriter.Save(f32, Dir("f32"));
            using var adapter = RandomAdapter(f32, "adapter", g);
            adapter.Save(Dir("adapter"));
            for (int e = 0; e < Experts; e++) { using var x = RandomAdapter(f32, $"e{e}", g); x.Save(Dir($"expert{e}")); }
        }
        using (var bf = CheckpointLoader.Load(Dir("f32"), ScalarType.BFloat16)) CheckpointWriter.Save(bf, Dir("bf16"));
    }
    long parameters;
    using (var m = CheckpointLoader.Load(Dir("f32"))) parameters = m.parameters().Sum(p => p.numel());
    Console.WriteLine($"{parameters / 1e6:0.0}M parameters; {threads.IntraOp} torch threads on both sides; {rounds} interleaved rounds; {newTokens} new tokens per decode");

    // The PyTorch side, one long-lived process driven line by line.
    var start = new ProcessStartInfo(python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = false };
    start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "llama_eager.py"));
    start.ArgumentList.Add("--threads");
    start.ArgumentList.Add(threads.IntraOp.ToString());
    start.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
    // Debian's python3-torch calls whatever libblas.so.3 the alternatives system picks, the slow reference BLAS
    // unless another is installed; point it at OpenBLAS (apt-get install libopenblas0-pthread) when present.
    const string OpenBlas = "/usr/lib/x86_64-linux-gnu/openblas-pthread";
    string blas = Directory.Exists(OpenBlas) ? "OpenBLAS" : "the system's libblas.so.3 (install libopenblas0-pthread for OpenBLAS)";
    if (Directory.Exists(OpenBlas))
    {
        start.Environment["LD_LIBRARY_PATH"] = OpenBlas + (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") is { Length: > 0 } l ? ":" + l : "");
        start.Environment["OPENBLAS_NUM_THREADS"] = threads.IntraOp.ToString();
    }
    using var py = Process.Start(start)!;
    JsonElement Ask(object request)
    {
        py.StandardInput.WriteLine(JsonSerializer.Serialize(request));
        py.StandardInput.Flush();
        var line = py.StandardOutput.ReadLine() ?? throw new InvalidOperationException("llama_eager.py exited");
        return JsonDocument.Parse(line).RootElement.Clone();
    }
    string? pyTorchVersion = null;

    long[] Ids(int batch, int tokens) => Enumerable.Range(0, batch * tokens).Select(i => (long)(i * 37 % config.VocabSize)).ToArray();
    double Time(Action a) { var sw = Stopwatch.StartNew(); a(); return sw.Elapsed.TotalSeconds; }

    var rows = new List<(string Name, string Unit, List<double> Ours, List<double> Theirs, double Work)>();
    List<double> Row(string name, string unit, double work, out List<double> theirs)
    {
        var r = rows.FirstOrDefault(x => x.Name == name);
        if (r.Name is null) { r = (name, unit, new List<double>(), new List<double>(), work); rows.Add(r); }
        theirs = r.Theirs;
        return r.Ours;
    }

    foreach (var (dtypeName, dir) in new[] { ("float32", "f32"), ("bfloat16", "bf16") })
    {
        long bytes = new FileInfo(Path.Combine(Dir(dir), "model.safetensors")).Length;
        bool runs = Measures("prefill") || Measures("decode");
        if (!runs && !Measures("load")) continue;
        foreach (bool withAdapter in runs ? new[] { false, true } : new[] { false })
        {
            string label = $"{dtypeName}{(withAdapter ? " + rank-16 adapter" : "")}";
            CausalLM? model = null;
            LoraAdapter? adapter = null;
            for (int round = 0; round < rounds + 1; round++) // round 0 warms both sides up and is not counted
            {
                bool counted = round > 0;
                // load: Amalgam then PyTorch (only the base; the adapter's load is not part of the figure)
                model?.Dispose(); adapter?.Dispose();
                double load = Time(() => model = CheckpointLoader.Load(Dir(dir)));
                var pl = Ask(new { op = "load", model = Dir(dir), adapter = withAdapter ? Dir("adapter") : null });
                pyTorchVersion ??= pl.GetProperty("torch").GetString();
                if (withAdapter) { adapter = LoraAdapter.Load(Dir("adapter"), model); adapter.AttachTo(model!); }
                if (counted && !withAdapter && Measures("load"))
                {
                    Row($"load, {dtypeName}", "s/GB", bytes / 1e9, out var tl).Add(load / (bytes / 1e9));
                    tl.Add(pl.GetProperty("seconds").GetDouble() / (bytes / 1e9));
                }
                using (inference_mode())
                {
                    if (Measures("prefill"))
                    {
                    double prefill = Time(() =>
                    {
                        using var s = NewDisposeScope();
                        model!.forward(new DecoderInput(tensor(Ids(1, PrefillTokens), [1, PrefillTokens]), LastPositionOnly: true)).Logits.data<float>();
                    });
                    double pyPrefill = Ask(new { op = "prefill", batch = 1, tokens = PrefillTokens }).GetProperty("seconds").GetDouble();
                    if (counted) { Row($"prefill 128 tokens, {label}", "ms", 1, out var tp).Add(prefill * 1e3); tp.Add(pyPrefill * 1e3); }
                    }
                    if (Measures("decode")) foreach (int batch in new[] { 1, 8 })
                    {
                        var prompts = Enumerable.Range(0, batch).Select(r => (IReadOnlyList<long>)Ids(batch, DecodePrompt).Skip(r * DecodePrompt).Take(DecodePrompt).ToArray()).ToList();
                        double decode = Time(() => GreedyDecoder.Generate(model!, prompts, newTokens));
                        double pyDecode = Ask(new { op = "decode", batch, prompt = DecodePrompt, @new = newTokens }).GetProperty("seconds").GetDouble();
                        double tokens = batch * newTokens;
                        if (counted) { Row($"decode batch {batch}, {label}", "tokens/s", 1, out var td).Add(tokens / decode); td.Add(tokens / pyDecode); }
                    }
                }
            }
            model?.Dispose(); adapter?.Dispose();
        }
    }
    py.StandardInput.Close();
    py.WaitForExit();

    // Mixed-expert batches: 8 rank-16 experts installed as a library, each row on its own expert (top-1).
    var mixed = new List<(int Batch, List<double> Base, List<double> Mixed)>();
    if (Measures("mixed"))
    using (var model = CheckpointLoader.Load(Dir("f32")))
    {
        var experts = Enumerable.Range(0, Experts).Select(e => LoraAdapter.Load(Dir($"expert{e}"), model)).ToList();
        using var library = new ExpertLibrary(model, experts);
        foreach (int batch in new[] { 8, 32 })
        {
            var prompts = Enumerable.Range(0, batch).Select(r => (IReadOnlyList<long>)Ids(batch, DecodePrompt).Skip(r * DecodePrompt).Take(DecodePrompt).ToArray()).ToList();
            var w = zeros(batch, Experts);
            for (int r = 0; r < batch; r++) w[r, r % Experts] = 1f;
            var entry = (batch, new List<double>(), new List<double>());
            for (int round = 0; round < rounds + 1; round++)
            {
                double b = Time(() => GreedyDecoder.Generate(model, prompts, newTokens));
                double m = Time(() => { using var mixing = new FixedMixing(w); GreedyDecoder.Generate(model, prompts, newTokens, mixing: mixing); });
                if (round > 0) { entry.Item2.Add(batch * newTokens / b); entry.Item3.Add(batch * newTokens / m); }
            }
            mixed.Add(entry);
            w.Dispose();
        }
        foreach (var e in experts) e.Dispose();
    }

    static double Median(List<double> xs) { var s = xs.Order().ToList(); return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2; }
    Console.WriteLine();
    Console.WriteLine($"PyTorch {pyTorchVersion} (eager, llama_eager.py, BLAS: {blas}) vs Amalgam (TorchSharp, libtorch 2.10); {threads.IntraOp} threads each; load average now {File.ReadAllText("/proc/loadavg").Trim()}");
    Console.WriteLine("| measurement | Amalgam (median) | PyTorch (median) | Amalgam speed / PyTorch speed | per round (Amalgam / PyTorch) |");
    Console.WriteLine("|---|---|---|---|---|");
    foreach (var (name, unit, ours, theirs, _) in rows)
    {
        double o = Median(ours), t = Median(theirs);
        bool higherIsBetter = unit == "tokens/s";
        double speed = higherIsBetter ? o / t : t / o;
        Console.WriteLine($"| {name} | {o:0.00} {unit} | {t:0.00} {unit} | {speed:0.00}x | {string.Join(", ", ours.Zip(theirs).Select(p => $"{p.First:0.0}/{p.Second:0.0}"))} |");
    }
    Console.WriteLine();
    Console.WriteLine("| mixed-expert batch (8 rank-16 experts, one per row, float32) | base tokens/s | mixed tokens/s | x base |");
    Console.WriteLine("|---|---|---|---|");
    foreach (var (batch, b, m) in mixed)
        Console.WriteLine($"| batch {batch} | {Median(b):0.0} | {Median(m):0.0} | {Median(m) / Median(b):0.00}x |");
}
finally
{
    if (keep is null && Directory.Exists(root)) Directory.Delete(root, true);
}
