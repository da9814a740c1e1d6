// Load benchmark of `amalgam serve`: an in-process HTTP client on loopback against a server started here, at
// concurrency 1, 8 and 32, for base-only traffic, one adapter for every request, mixed traffic (request i → expert
// i mod K, so neighbouring rows of the batch want different experts) and either 2-adapter mixes through the
// `adapters` field (the bundled suite) or routed traffic (--synthetic: a saved top-1 router strategy planning every
// request from its prompt). Every request generates exactly --max-tokens tokens (ignore_eos), so all do the same
// work. The scenarios of one concurrency run interleaved, round by round, so their ratios to the base are measured
// side by side under the same machine load; then a soak with a small queue, where every request must be answered
// (200) or refused cleanly (429) and live tensors and memory must not grow.
// --synthetic: a Llama of ~125M parameters (hidden 768, 12 layers, 12 heads, 4 KV heads, vocab 32000) with 8
// random rank-16 all-linear experts and a centroid router over them, synthesised once under --dir.
// Run from the repo root: dotnet run --project bench/Amalgam.Bench.Serving -c Release [-- --quick] [--synthetic [--dir D]]
//   [--soak SECONDS] [--soak-only] [--max-tokens N] [--rounds N] [--requests-per-client N] [--min-requests N] [--concurrency 1,8,32]
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Routing;
using Amalgam.Serving;
using Amalgam.Serving.Engine;
using Amalgam.Strategies;
using Amalgam.Strategies.Saved;
using static TorchSharp.torch;

string? Opt(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
bool quick = args.Contains("--quick"), synthetic = args.Contains("--synthetic");
int soakSeconds = Opt("--soak") is { } sv ? int.Parse(sv) : quick ? 20 : 120;
int rounds = Opt("--rounds") is { } rv ? int.Parse(rv) : quick ? 1 : 3;
int maxTokens = Opt("--max-tokens") is { } mv ? int.Parse(mv) : 16;
int perClient = Opt("--requests-per-client") is { } pv ? int.Parse(pv) : quick ? 2 : 4;
int minRequests = Opt("--min-requests") is { } nv ? int.Parse(nv) : quick ? 8 : 24;
int[] concurrencies = Opt("--concurrency") is { } cv ? cv.Split(',').Select(int.Parse).ToArray() : [1, 8, 32];
Console.WriteLine($"load average at start: {File.ReadAllText("/proc/loadavg").Trim()}  ({Environment.ProcessorCount} cores)");

string baseDir;
List<(string Name, string Dir)> experts;
List<object> prompts;                                   // a string, or token ids
List<(string Name, string Dir)> strategies = [];
string[] scenarios;
if (synthetic)
{
    string root = Opt("--dir") ?? Path.Combine(Path.GetTempPath(), "amalgam-bench-serving-125m");
    baseDir = Path.Combine(root, "base");
    experts = Enumerable.Range(0, 8).Select(k => ($"e{k}", Path.Combine(root, $"expert{k}"))).ToList();
    // 8 prompts of 24 token ids (no tokenizer round trip), one per expert; the router learns prompt k → expert k.
    var ids = Enumerable.Range(0, 8).Select(k => Enumerable.Range(0, 24).Select(i => (long)(4 + (k * 4001 + i * 97 + i * i * k) % 31990)).ToArray()).ToList();
    prompts = ids.Select(p => (object)p).ToList();
    if (!File.Exists(Path.Combine(root, "router", StrategyFolder.FileName))) SyntheticSetup.Create(root, experts, ids);
    strategies = [("router", Path.Combine(root, "router"))];
    scenarios = ["base", "one-adapter", "mixed", "routed"];
}
else
{
    var suite = Suite.Load("suite");
    baseDir = suite.BasePath;
    experts = suite.HeldIn.Select(t => (t.Name, Dir: t.ExpertPath!)).ToList();
    prompts = suite.HeldIn.Select(t => (object)suite.Prompt(Suite.LoadSplit(t, Suite.Test)[0])).ToList();
    scenarios = ["base", "one-adapter", "mixed", "mix-of-2"];
}

await using var server = await AmalgamServer.StartAsync(new ServeOptions(baseDir)
{
    Adapters = experts,
    Strategies = strategies,
    Port = 0,
    ServedModelName = "base",
    Engine = new EngineOptions(MaxBatch: 32, MaxQueue: 256),
});
Console.WriteLine(server.Summary);
using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(5) };

string Body(string scenario, int i)
{
    int e = i % experts.Count;
    object body = scenario switch
    {
        "base" => new { model = "base", prompt = prompts[e], max_tokens = maxTokens, temperature = 0, ignore_eos = true },
        "one-adapter" => new { model = experts[0].Name, prompt = prompts[e], max_tokens = maxTokens, temperature = 0, ignore_eos = true },
        "mixed" => new { model = experts[e].Name, prompt = prompts[e], max_tokens = maxTokens, temperature = 0, ignore_eos = true },
        "mix-of-2" => new { model = "base", prompt = prompts[e], max_tokens = maxTokens, temperature = 0, ignore_eos = true,
            adapters = new Dictionary<string, double> { [experts[e].Name] = 0.5, [experts[(e + 1) % experts.Count].Name] = 0.5 } },
        "routed" => new { model = "router", prompt = prompts[e], max_tokens = maxTokens, temperature = 0, ignore_eos = true },
        _ => throw new ArgumentException(scenario),
    };
    return JsonSerializer.Serialize(body);
}

async Task<(HttpStatusCode Status, int Tokens, double Seconds)> Send(string body)
{
    var clock = Stopwatch.StartNew();
    using var response = await http.PostAsync("v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
    string text = await response.Content.ReadAsStringAsync();
    int tokens = response.IsSuccessStatusCode ? JsonDocument.Parse(text).RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32() : 0;
    return (response.StatusCode, tokens, clock.Elapsed.TotalSeconds);
}

// `requests` requests from `concurrency` closed-loop clients.
async Task<(double Seconds, List<(HttpStatusCode Status, int Tokens, double Seconds)> Results)> Run(string scenario, int concurrency, int requests)
{
    var results = new List<(HttpStatusCode, int, double)>();
    int next = 0;
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
    {
        while (true)
        {
            int i = Interlocked.Increment(ref next) - 1;
            if (i >= requests) return;
            var r = await Send(Body(scenario, i));
            lock (results) results.Add(r);
        }
    }));
    return (clock.Elapsed.TotalSeconds, results);
}

static double Percentile(List<double> xs, double p)
{
    var sorted = xs.Order().ToList();
    return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}

if (args.Contains("--soak-only")) concurrencies = [];
await Run("mixed", 8, 16);   // warm-up: JIT, allocator, the library's first gathers
Console.WriteLine();
Console.WriteLine("| concurrency | traffic | requests | req/s | tokens/s | p50 latency (s) | p99 latency (s) | tokens/s ÷ base |");
Console.WriteLine("|---|---|---|---|---|---|---|---|");
foreach (int c in concurrencies)
{
    int requests = Math.Max(minRequests, c * perClient);
    var cells = scenarios.ToDictionary(s => s, _ => new List<(double Seconds, List<(HttpStatusCode Status, int Tokens, double Seconds)> Results)>());
    for (int round = 0; round < rounds; round++)
        foreach (var s in scenarios) cells[s].Add(await Run(s, c, requests));
    double TokensPerSecond(string s) => cells[s].Max(r => r.Results.Sum(x => x.Tokens) / r.Seconds);   // best round: least disturbed by other load
    foreach (var s in scenarios)
    {
        var all = cells[s].SelectMany(r => r.Results).ToList();
        if (all.Any(r => r.Status != HttpStatusCode.OK)) throw new InvalidOperationException($"{s} at concurrency {c}: {all.Count(r => r.Status != HttpStatusCode.OK)} requests failed");
        var best = cells[s].MaxBy(r => r.Results.Sum(x => x.Tokens) / r.Seconds);
        var latencies = all.Select(r => r.Seconds).ToList();
        Console.WriteLine($"| {c} | {s} | {all.Count} | {best.Results.Count / best.Seconds:F1} | {TokensPerSecond(s):F0} | {Percentile(latencies, 0.5):F3} | {Percentile(latencies, 0.99):F3} | {TokensPerSecond(s) / TokensPerSecond("base"):F2} |");
    }
}
Console.WriteLine($"load average after the sweep: {File.ReadAllText("/proc/loadavg").Trim()}");

// Soak: 48 clients against a queue of 8 with batches of 16, mixed traffic, for soakSeconds. Live tensors are
// counted with the soak server idle, before and after; resident memory after 10 s of soak and at the end.
await using var small = await AmalgamServer.StartAsync(new ServeOptions(baseDir)
{
    Adapters = experts,
    Strategies = strategies,
    ServedModelName = "base",
    Port = 0,
    Engine = new EngineOptions(MaxBatch: 16, MaxQueue: 8),
});
using var soakHttp = new HttpClient { BaseAddress = small.Address, Timeout = TimeSpan.FromMinutes(5) };
long Live() { GC.Collect(); GC.WaitForPendingFinalizers(); return TorchSharp.torch.Tensor.TotalCount; }
(await soakHttp.PostAsync("v1/completions", new StringContent(Body("mixed", 0), Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
await Task.Delay(200);
long tensorsBefore = Live(), rssBefore = 0;
var statuses = new Dictionary<HttpStatusCode, int>();
var soakClock = Stopwatch.StartNew();
bool measured = false;
await Task.WhenAll(Enumerable.Range(0, 48).Select(async client =>
{
    int i = client;
    while (soakClock.Elapsed.TotalSeconds < soakSeconds)
    {
        var body = Body(i % 3 == 0 ? scenarios[3] : "mixed", i);
        i += 48;
        HttpStatusCode status;
        try
        {
            using var response = await soakHttp.PostAsync("v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
            await response.Content.ReadAsStringAsync();
            status = response.StatusCode;
            if (status == HttpStatusCode.TooManyRequests) await Task.Delay(200);
        }
        catch (HttpRequestException) { status = 0; }
        lock (statuses)
        {
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            if (!measured && soakClock.Elapsed.TotalSeconds > Math.Min(10, soakSeconds / 4.0))
            {
                measured = true;
                rssBefore = Process.GetCurrentProcess().WorkingSet64;
            }
        }
    }
}));
long rssAfter = Process.GetCurrentProcess().WorkingSet64;
await Task.Delay(500);
long tensorsAfter = Live();
Console.WriteLine();
Console.WriteLine($"soak: {soakSeconds} s, 48 clients, max batch 16, queue 8: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{(int)s.Key}: {s.Value}")));
Console.WriteLine($"soak: resident memory {rssBefore >> 20} MB after 10 s, {rssAfter >> 20} MB at the end; live tensors (idle) {tensorsBefore} before, {tensorsAfter} after");
var after = await Send(Body("mixed", 1));
Console.WriteLine($"after the soak the first server still answers: {(int)after.Status}");
Console.WriteLine($"load average at the end: {File.ReadAllText("/proc/loadavg").Trim()}");
if (statuses.Keys.Any(s => s is not (HttpStatusCode.OK or HttpStatusCode.TooManyRequests))) { Console.WriteLine("soak: FAILED (answers other than 200 and 429)"); return 1; }
if (tensorsAfter != tensorsBefore) { Console.WriteLine("soak: FAILED (live tensors changed)"); return 1; }
return 0;

/// <summary>The synthetic ~125M Llama, its 8 random rank-16 experts and a saved top-1 centroid router over them.</summary>
static class SyntheticSetup
{
    const int Rank = 16;

    public static void Create(string root, IReadOnlyList<(string Name, string Dir)> experts, IReadOnlyList<long[]> prompts)
    {
        Directory.CreateDirectory(root);
        var config = JsonSerializer.Deserialize<DecoderConfig>("""{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000, "hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 12, "num_key_value_heads": 4, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 2048, "bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0}""")!;
        config.Validate();
        string baseDir = Path.Combine(root, "base");
        Console.WriteLine($"synthesising a {config.NumHiddenLayers}-layer Llama (hidden {config.HiddenSize}, vocab {config.VocabSize}) and {experts.Count} rank-{Rank} experts under {root}");
        using (var scope = NewDisposeScope())
        {
            var g = new Generator(0);
            using var model = new CausalLM(config, ScalarType.Float32);
            using (no_grad()) foreach (var (_, p) in model.named_parameters()) p.copy_(randn(p.shape, generator: g) * 0.02f);
            CheckpointWriter.Save(model, baseDir, staging => File.WriteAllText(Path.Combine(staging, "tokenizer.amalgam.json"), Tokenizer(config.VocabSize)));
            foreach (var (name, dir) in experts) { using var a = RandomAdapter(model, name, g); a.Save(dir); }
            Console.WriteLine($"{model.parameters().Sum(p => p.numel()) / 1e6:F1}M parameters");
        }
        using var pool = ExpertPool.Load(baseDir, experts.ToList());
        using var features = PromptFeatures.MeanPooled(pool.Model, prompts.Select(p => (IReadOnlyList<long>)p).ToList(), pool.PadId);
        using var router = CentroidRouter.Build(features, Enumerable.Range(0, experts.Count).ToList(), pool.Names);
        using var strategy = new RouterStrategy(router, 1, RouteAggregation.Parameters, ownsRouter: false) { Name = "router", Family = "route" };
        StrategyFolder.Save(strategy, pool, Path.Combine(root, "router"));
    }

    // 32000 distinct tokens: the four specials, printable ASCII, then "⟨k⟩".
    static string Tokenizer(int vocab)
    {
        var tokens = new List<string> { "<pad>", "<unk>", "<s>", "</s>" };
        tokens.AddRange(Enumerable.Range(32, 95).Select(c => ((char)c).ToString()));
        for (int k = tokens.Count; k < vocab; k++) tokens.Add($"⟨{k}⟩");
        return JsonSerializer.Serialize(new { format = "amalgam-tokens-v1", bos = "<s>", eos = "</s>", pad = "<pad>", unk = "<unk>", tokens });
    }

    static LoraAdapter RandomAdapter(CausalLM model, string name, Generator g)
    {
        var factors = new Dictionary<string, (Tensor A, Tensor B)>();
        foreach (var (module, linear) in model.Linears)
        {
            if (module == CausalLM.OutputLayer) continue;   // all-linear leaves the output layer out
            var w = linear.Weight;
            factors[module] = ((randn([Rank, w.shape[1]], generator: g) * 0.02f).DetachFromDisposeScope(), (randn([w.shape[0], Rank], generator: g) * 0.02f).DetachFromDisposeScope());
        }
        return new LoraAdapter(name, new LoraConfig { R = Rank, LoraAlpha = Rank, TargetModules = JsonDocument.Parse("\"all-linear\"").RootElement.Clone() }, factors);
    }
}
