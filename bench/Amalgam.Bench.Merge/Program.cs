// Streaming-merge benchmark: merge throughput against plain reading + writing of the same bytes in the same run
// (the I/O bound), and peak resident memory against the largest-tensor bound.
// Run: dotnet run --project bench/Amalgam.Bench.Merge -c Release [-- --tensors 24 --rows 4096 --cols 5504 --dir /tmp]
using System.Diagnostics;
using Amalgam.Merging;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;
using Amalgam.Tensors;
using static TorchSharp.torch;

int Arg(string name, int fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() is { } v ? int.Parse(v) : fallback;
int count = Arg("--tensors", 24), rows = Arg("--rows", 4096), cols = Arg("--cols", 5504);
const int experts = 3;
string root = Path.Combine(args.SkipWhile(a => a != "--dir").Skip(1).FirstOrDefault() ?? Path.GetTempPath(), "amalgam-bench-merge-" + Guid.NewGuid().ToString("N")[..8]);
long tensorBytes = (long)rows * cols * 2;
long inputBytes = tensorBytes * count;

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
        foreach (var n in names)
        {
            using var scope = NewDisposeScope();
            writer.Write(n, (randn(rows, cols) * 0.02).to(ScalarType.BFloat16));
        }
        writer.Commit();
        File.WriteAllText(Path.Combine(Folder(input), "config.json"), $$"""{"architectures": ["LlamaForCausalLM"], "num_hidden_layers": {{(count + 6) / 7}}, "torch_dtype": "bfloat16"}""");
    }

    var sampler = new PeakSampler();
    var inputs = new[] { "base" }.Concat(Enumerable.Range(0, experts).Select(i => $"expert{i}")).Select(Folder).ToList();

    // I/O bound: load every key from every input (the same mmap copy the executor does) and write one tensor per key.
    double IoBaseline(string outDir)
    {
        var clock = Stopwatch.StartNew();
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
        return clock.Elapsed.TotalSeconds;
    }

    IMergeMethod method = MergeMethods.All.TryGetValue("task_arithmetic", out var real) ? real : new BenchTaskArithmetic();
    string yaml = $"merge_method: task_arithmetic\nbase_model: {inputs[0]}\nmodels:\n" +
                  string.Concat(inputs.Skip(1).Select(p => $"  - model: {p}\n    parameters: {{weight: 0.5}}\n")) + "parameters: {lambda: 1.0}\n";
    var recipe = MergeRecipe.Parse(yaml, "bench", _ => method);

    IoBaseline(Path.Combine(root, "warmup")); // page cache warm for both measurements
    Directory.Delete(Path.Combine(root, "warmup"), true);

    sampler.Reset();
    double io = IoBaseline(Path.Combine(root, "io"));
    var ioPeak = sampler.Peak();
    Directory.Delete(Path.Combine(root, "io"), true);

    sampler.Reset();
    var summary = MergeRunner.Run(recipe, Path.Combine(root, "merged"));
    var mergePeak = sampler.Peak();
    double merge = summary.Elapsed.TotalSeconds;
    sampler.Stop();

    long read = inputBytes * inputs.Count;
    Console.WriteLine($"method: {method.Name} ({(method is BenchTaskArithmetic ? "bench-local stand-in" : "built-in")}); {get_num_threads()} torch threads");
    Console.WriteLine($"input merged: {ByteSize.Format(read)} ({inputs.Count} inputs), written {ByteSize.Format(summary.BytesWritten)}");
    Console.WriteLine($"plain read+write: {io:0.00} s = {read / io / 1e9:0.00} GB/s of input");
    Console.WriteLine($"merge:            {merge:0.00} s = {read / merge / 1e9:0.00} GB/s of input  ({io / merge:0.00}x of the I/O bound)");
    long boundStored = (inputs.Count + 1) * tensorBytes, boundCompute = (inputs.Count + 1) * tensorBytes * 2;
    Console.WriteLine($"largest tensor: {ByteSize.Format(tensorBytes)} bf16; bound (inputs+1) x largest = {ByteSize.Format(boundStored)} stored, {ByteSize.Format(boundCompute)} in float32");
    Console.WriteLine($"peak during I/O baseline: VmHWM {ByteSize.Format(ioPeak.Hwm)}, anonymous {ByteSize.Format(ioPeak.Anon)} (process baseline before: {ByteSize.Format(ioPeak.Start)})");
    Console.WriteLine($"peak during merge:        VmHWM {ByteSize.Format(mergePeak.Hwm)}, anonymous {ByteSize.Format(mergePeak.Anon)} (process baseline before: {ByteSize.Format(mergePeak.Start)})");
}
finally
{
    if (Directory.Exists(root)) Directory.Delete(root, true);
}

/// <summary>θ0 + λ·Σ wᵢ(θᵢ − θ0), for when the built-in catalogue has no task_arithmetic yet.</summary>
sealed class BenchTaskArithmetic : IMergeMethod
{
    public string Name => "task_arithmetic";
    public string Description => "task vectors summed (bench stand-in)";
    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("weight", ParameterScope.PerModel, ParameterKind.Number, null, "model weight"),
        new("lambda", ParameterScope.Global, ParameterKind.Number, 1.0, "scale"),
    ];
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public bool IsRandomized => false;
    public Tensor Merge(MergeTensorInputs inputs)
    {
        var b = inputs.Base!;
        var sum = zeros_like(b);
        for (int i = 0; i < inputs.Models.Count; i++)
            sum.add_(inputs.Models[i] - b, alpha: inputs.ModelParameters[i].Number("weight", 1));
        return sum.mul_(inputs.Global.Number("lambda", 1)).add_(b);
    }
}

/// <summary>Samples /proc/self/status every 20 ms: VmHWM (reset through clear_refs where allowed) and the peak of RssAnon.</summary>
sealed class PeakSampler
{
    long hwmStart, anonPeak, start;
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
        anonPeak = Read("RssAnon");
    }

    public (long Hwm, long Anon, long Start) Peak() { anonPeak = Math.Max(anonPeak, Read("RssAnon")); return (Read("VmHWM"), anonPeak, start); }

    public void Stop() { stop = true; thread.Join(); }
}
