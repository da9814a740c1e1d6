// Load benchmark of `amalgam serve` on the bundled suite: an in-process HTTP client on loopback against a server
// started here, at concurrency 1, 8 and 32, for base-only traffic, one adapter for every request, mixed traffic
// (request i → expert i mod 12, so neighbouring rows of the batch want different experts) and 2-adapter mixes
// through the `adapters` field. Every request generates exactly 16 tokens (ignore_eos), so all do the same work. The scenarios of one concurrency run interleaved, round by round, so their ratios
// to the base are measured side by side under the same machine load; then a soak with a small queue, where every
// request must be answered (200) or refused cleanly (429) and live tensors and memory must not grow.
// Run from the repo root: dotnet run --project bench/Amalgam.Bench.Serving -c Release [-- --quick] [--soak SECONDS]
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Amalgam.Evaluation.Suites;
using Amalgam.Serving;
using Amalgam.Serving.Engine;

bool quick = args.Contains("--quick");
int soakSeconds = args.SkipWhile(a => a != "--soak").Skip(1).Select(int.Parse).FirstOrDefault(quick ? 20 : 120);
int rounds = quick ? 1 : 3, maxTokens = 16;
int[] concurrencies = [1, 8, 32];

var suite = Suite.Load("suite");
var experts = suite.HeldIn.Select(t => (t.Name, Dir: t.ExpertPath!)).ToList();
var prompts = suite.HeldIn.Select(t => suite.Prompt(Suite.LoadSplit(t, Suite.Test)[0])).ToList();
Console.WriteLine($"load average at start: {File.ReadAllText("/proc/loadavg").Trim()}  ({Environment.ProcessorCount} cores)");

await using var server = await AmalgamServer.StartAsync(new ServeOptions(suite.BasePath)
{
    Adapters = experts.Select(e => (e.Name, e.Dir)).ToList(),
    Port = 0,
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

string[] scenarios = ["base", "one-adapter", "mixed", "mix-of-2"];
await Run("mixed", 8, 16);   // warm-up: JIT, allocator, the library's first gathers
Console.WriteLine();
Console.WriteLine("| concurrency | traffic | requests | req/s | tokens/s | p50 latency (s) | p99 latency (s) | tokens/s ÷ base |");
Console.WriteLine("|---|---|---|---|---|---|---|---|");
foreach (int c in concurrencies)
{
    int requests = Math.Max(quick ? 8 : 24, c * (quick ? 2 : 4));
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

// Soak: 48 clients against a queue of 8 with batches of 16, mixed traffic, for soakSeconds.
await using var small = await AmalgamServer.StartAsync(new ServeOptions(suite.BasePath)
{
    Adapters = experts.Select(e => (e.Name, e.Dir)).ToList(),
    Port = 0,
    Engine = new EngineOptions(MaxBatch: 16, MaxQueue: 8),
});
using var soakHttp = new HttpClient { BaseAddress = small.Address, Timeout = TimeSpan.FromMinutes(5) };
long Live() { GC.Collect(); GC.WaitForPendingFinalizers(); return TorchSharp.torch.Tensor.TotalCount; }
var statuses = new Dictionary<HttpStatusCode, int>();
var soakClock = Stopwatch.StartNew();
long tensorsBefore = 0, rssBefore = 0;
bool measured = false;
await Task.WhenAll(Enumerable.Range(0, 48).Select(async client =>
{
    int i = client;
    while (soakClock.Elapsed.TotalSeconds < soakSeconds)
    {
        var body = Body(i % 3 == 0 ? "mix-of-2" : "mixed", i);
        i += 48;
        HttpStatusCode status;
        try
        {
            using var response = await soakHttp.PostAsync("v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
            await response.Content.ReadAsStringAsync();
            status = response.StatusCode;
            if (status == HttpStatusCode.TooManyRequests) await Task.Delay(50);
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
await Task.Delay(500);
tensorsBefore = Live();
long rssAfter = Process.GetCurrentProcess().WorkingSet64;
Console.WriteLine();
Console.WriteLine($"soak: {soakSeconds} s, 48 clients, max batch 16, queue 8: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{(int)s.Key}: {s.Value}")));
Console.WriteLine($"soak: resident memory {rssBefore >> 20} MB after warm-up, {rssAfter >> 20} MB at the end; live tensors after the soak {tensorsBefore}");
var after = await Send(Body("mixed", 1));
Console.WriteLine($"after the soak the first server still answers: {(int)after.Status}");
if (statuses.Keys.Any(s => s is not (HttpStatusCode.OK or HttpStatusCode.TooManyRequests))) { Console.WriteLine("soak: FAILED (answers other than 200 and 429)"); return 1; }
Console.WriteLine($"load average at the end: {File.ReadAllText("/proc/loadavg").Trim()}");
return 0;
