// Streaming-merge benchmark: task arithmetic and TIES over 3 experts against plain reading + writing of the same
// bytes (the I/O bound) and against a per-tensor PyTorch implementation of mergekit's TIES, all in the same run
// (interleaved rounds, medians), with peak anonymous memory against the (K+3) x largest-tensor bound.
// Run: dotnet run --project bench/Amalgam.Bench.Merge -c Release [-- --tensors 11 --rows 4096 --cols 5504 --rounds 3
//      --density 0.5 --dir /tmp --python /usr/bin/python3]
using System.Diagnostics;
using System.Text.Json;
using Amalgam.Merging;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;
using Amalgam.Runtime;
using Amalgam.Tensors;
using static TorchSharp.torch;

string? Opt(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
int Arg(string name, int fallback) => Opt(name) is { } v ? int.Parse(v) : fallback;
int count = Arg("--tensors", 11), rows = Arg("--rows", 4096), cols = Arg("--cols", 5504), rounds = Arg("--rounds", 3);
double density = Opt("--density") is { } dv ? double.Parse(dv, System.Globalization.CultureInfo.InvariantCulture) : 0.5;
string python = Opt("--python") ?? "/usr/bin/python3";
const int experts = 3;
string root = Path.Combine(Opt("--dir") ?? Path.GetTempPath(), "amalgam-bench-merge-" + Guid.NewGuid().ToString("N")[..8]);
long tensorBytes = (long)rows * cols * 2;
long inputBytes = tensorBytes * count;
var threads = TorchThreads.Configure(Opt("--threads") is { } tv ? int.Parse(tv) : null);
string script = Path.Combine(AppContext.BaseDirectory, "ties_mergekit.py");

try
{
    Console.WriteLine($"synthesising base + {experts} experts: {count} bf16 tensors of {rows}x{cols} each ({ByteSize.Format(inputBytes)} per input) under {root}");
    var names = Enumerable.Range(0, count).Select(i => $"model.layers.{i / 7}.mlp.w{i % 7}.weight").ToList();
    var specs = names.Select(n => new TensorSpec(n, DType.BF16, [rows, cols])).ToList();
    string Folder(string n) => Path.Combine(root, n);
    manual_seed(0);
    foreach (var input in new[] { "base" }.Concat(Enumerable.Range(0, experts).Select(i => $"expert{i}")))
    {
        Directory.CreateDirectory(Folder(input));
        using var writer = new ShardedCheckpointWriter(Folder(input), specs, 2_000_000_000);
        using var baseGen = new TorchSharp.torch.Generator(1);
        foreach (var n in names)
        {
            using var scope = NewDisposeScope();
            // experts = base + a small task vector, as fine-tunes are
            var w = randn(rows, cols, generator: baseGen) * 0.02;
            if (input != "base") w = w + randn(rows, cols) * 0.002;
            writer.Write(n, w.to(ScalarType.BFloat16));
        }
        writer.Commit();
        File.WriteAllText(Path.Combine(Folder(input), "config.json"), $$"""{"architectures": ["LlamaForCausalLM"], "num_hidden_layers": {{(count + 6) / 7}}, "torch_dtype": "bfloat16"}""");
    }

    var sampler = new PeakSampler();
    var inputs = new[] { "base" }.Concat(Enumerable.Range(0, experts).Select(i => $"expert{i}")).Select(Folder).ToList();

    // I/O bound: load every key from every input (the same mmap copy the executor does) and write one tensor per key.
    void IoBaseline(string outDir)
    {
        AtomicDirectory.Write(outDir, staging =>
        {
            var stores = inputs.Select(TensorStore.Open).ToList();
            using var writer = new ShardedCheckpointWriter(staging, specs, 5_000_000_000);
            foreach (var n in names)
            {
                using var scope = NewDisposeScope();
                var loaded = stores.Select(s => s.Load(n)).ToList();
                writer.Write(n, loaded[0]);
            }
            writer.Commit();
            foreach (var s in stores) s.Dispose();
        });
    }

    MergeRecipe Recipe(string method) => MergeRecipe.Parse(
        $"merge_method: {method}\nbase_model: {inputs[0]}\nmodels:\n" +
        string.Concat(inputs.Skip(1).Select(p => $"  - model: {p}\n    parameters: {{weight: 0.5{(method == "ties" ? $", density: {density.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : "")}}}\n")) +
        "parameters: {lambda: 1.0}\ndtype: float32\nout_dtype: bfloat16\n", "bench");

    (double Seconds, long Anon, long Hwm) Python(string method, string outDir)
    {
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { script, "--base", inputs[0] }.Concat(inputs.Skip(1).SelectMany(p => new[] { "--model", p }))
                     .Concat(["--out", outDir, "--density", density.ToString(System.Globalization.CultureInfo.InvariantCulture), "--weight", "0.5", "--threads", threads.IntraOp.ToString(), "--method", method]))
            start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{script}: exit {p.ExitCode}: {stderr}");
        var j = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement;
        return (j.GetProperty("seconds").GetDouble(), j.GetProperty("peak_anon").GetInt64(), j.GetProperty("vmhwm").GetInt64());
    }

    var phases = new List<string> { "read + write (I/O bound)", "task_arithmetic", "ties", "PyTorch TIES (mergekit, per tensor)" };
    var seconds = phases.ToDictionary(p => p, _ => new List<double>());
    var anon = phases.ToDictionary(p => p, _ => 0L);
    var hwm = phases.ToDictionary(p => p, _ => 0L);
    bool pythonOk = File.Exists(python) && File.Exists(script);
    if (!pythonOk) Console.WriteLine($"no {python} or {script}: the PyTorch row is skipped");

    IoBaseline(Path.Combine(root, "warmup")); // page cache warm for every measurement
    Directory.Delete(Path.Combine(root, "warmup"), true);
    string loadBefore = File.ReadAllText("/proc/loadavg").Trim();
    for (int round = 0; round < rounds; round++)
    {
        foreach (var phase in phases)
        {
            string outDir = Path.Combine(root, "out");
            sampler.Reset();
            var clock = Stopwatch.StartNew();
            if (phase.StartsWith("read")) IoBaseline(outDir);
            else if (phase == "task_arithmetic" || phase == "ties") MergeRunner.Run(Recipe(phase), outDir);
            else if (!pythonOk) continue;
            double t = clock.Elapsed.TotalSeconds;
            var peak = sampler.Peak();
            long phaseAnon = peak.Anon - peak.StartAnon, phaseHwm = peak.Hwm;
            if (phase.StartsWith("PyTorch"))
            {
                var r = Python("ties", outDir);
                (t, phaseAnon, phaseHwm) = (r.Seconds, r.Anon, r.Hwm);
            }
            seconds[phase].Add(t);
            anon[phase] = Math.Max(anon[phase], phaseAnon);
            hwm[phase] = Math.Max(hwm[phase], phaseHwm);
            Console.WriteLine($"round {round + 1}: {phase}: {t:0.00} s");
            Directory.Delete(outDir, true);
        }
    }
    sampler.Stop();
    string loadAfter = File.ReadAllText("/proc/loadavg").Trim();

    static double Median(List<double> xs) { var s = xs.Order().ToList(); return s.Count == 0 ? double.NaN : s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2; }
    long read = inputBytes * inputs.Count;
    double io = Median(seconds[phases[0]]);
    long largest32 = (long)rows * cols * 4;
    Console.WriteLine();
    Console.WriteLine($"{inputs.Count} inputs x {ByteSize.Format(inputBytes)} (bf16, {count} tensors of {rows}x{cols}), TIES density {density}, weights 0.5; {threads.IntraOp} torch threads; {rounds} interleaved rounds, medians");
    Console.WriteLine($"load average before: {loadBefore}; after: {loadAfter}");
    Console.WriteLine($"bound on the merge's heap: (K+3) x largest tensor in float32 = {ByteSize.Format((experts + 3) * largest32)}");
    Console.WriteLine("| phase | time (median) | rounds | input merged per second | x I/O bound | peak anonymous memory (heap) | VmHWM |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    foreach (var phase in phases)
    {
        if (seconds[phase].Count == 0) continue;
        double t = Median(seconds[phase]);
        string anonText = phase.StartsWith("PyTorch") ? ByteSize.Format(anon[phase]) + " (process)" : ByteSize.Format(anon[phase]) + " above the process";
        Console.WriteLine($"| {phase} | {t:0.00} s | {string.Join(", ", seconds[phase].Select(x => x.ToString("0.00")))} | {read / t / 1e9:0.00} GB/s | {io / t:0.000}x | {anonText} | {ByteSize.Format(hwm[phase])} |");
    }
}
finally
{
    if (Directory.Exists(root)) Directory.Delete(root, true);
}

/// <summary>Samples /proc/self/status every 20 ms: VmHWM (reset through clear_refs where allowed) and the peak of RssAnon.</summary>
sealed class PeakSampler
{
    long hwmStart, anonPeak, start, startAnon;
    readonly Thread thread;
    volatile bool stop;

    public PeakSampler()
    {
        thread = new Thread(() => { while (!stop) { anonPeak = Math.Max(anonPeak, Read("RssAnon")); Thread.Sleep(20); } }) { IsBackground = true };
        thread.Start();
    }

    static long Read(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":")) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return 0;
    }

    public void Reset()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (Exception) { } // resets VmHWM to the current RSS
        GC.Collect();
        hwmStart = Read("VmHWM");
        start = Read("VmRSS");
        anonPeak = startAnon = Read("RssAnon");
    }

    public (long Hwm, long Anon, long Start, long StartAnon) Peak() { anonPeak = Math.Max(anonPeak, Read("RssAnon")); return (Read("VmHWM"), anonPeak, start, startAnon); }

    public void Stop() { stop = true; thread.Join(); }
}
