using System.Threading.Channels;
using Amalgam.Ensembling;
using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Serving.Engine;

/// <summary>
/// Continuous batching of mixed experts on one base model. One engine thread owns every tensor: HTTP handlers
/// submit requests through a bounded queue and read their tokens from per-request channels. Between decoding
/// steps, arriving requests are prefilled together (one padded forward, their own cache) and their cache rows
/// join the running batch's; finished, cancelled or disconnected requests leave it. Every row carries its own
/// expert weights (a row of [batch, K] through the installed <see cref="ExpertLibrary"/>), so rows of the base,
/// of different adapters and of weighted mixes share one base forward; an output ensemble takes one row per member.
/// </summary>
public sealed class ServingEngine : IDisposable
{
    private sealed record Row(GenerationRequest Request, int Member);

    private readonly CausalLM model;
    private readonly EngineOptions options;
    private readonly ServingMetrics metrics;
    private readonly HashSet<long> stopTokens;
    private readonly long padId;
    private readonly long bytesPerPosition;
    private readonly bool reportsGauges;
    private readonly Channel<GenerationRequest> queue;
    private readonly Channel<Action> control = Channel.CreateUnbounded<Action>();
    private readonly Thread thread;
    private readonly TaskCompletionSource stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Engine-thread state.
    private readonly Dictionary<string, LoraAdapter> adapters = new(StringComparer.Ordinal);
    private readonly HashSet<string> unloading = new(StringComparer.Ordinal);
    private ExpertLibrary? library;
    private List<string> libraryNames = [];
    private List<Row> rows = [];
    private KvCache cache;
    private Tensor? rowWeights;
    private FixedMixing? rowMixing;     // holds the layers' gathers of rowWeights across steps
    private bool rowWeightsStale = true;
    private GenerationRequest? deferred;
    private volatile bool draining, stopping;

    /// <param name="model">the base model (the engine uses it from its own thread only)</param>
    /// <param name="adapters">adapters served from the start, by served name; the engine owns them</param>
    /// <param name="stopTokens">end-of-sequence ids</param>
    /// <param name="padId">id written into padding positions (masked out)</param>
    /// <param name="options">batch, queue and cache limits</param>
    /// <param name="metrics">where queue depth, batch size, tokens and latencies are counted</param>
    /// <param name="reportsGauges">whether this engine sets the queue and batch gauges (one engine per server does: the base's)</param>
    public ServingEngine(CausalLM model, IReadOnlyDictionary<string, LoraAdapter> adapters, IReadOnlyCollection<long> stopTokens, long padId,
        EngineOptions options, ServingMetrics metrics, bool reportsGauges = true)
    {
        this.reportsGauges = reportsGauges;
        options.Validate();
        this.model = model;
        this.options = options;
        this.metrics = metrics;
        this.stopTokens = stopTokens.ToHashSet();
        this.padId = padId;
        foreach (var (name, adapter) in adapters) this.adapters[name] = adapter;
        var c = model.Config;
        bytesPerPosition = 2L * c.NumHiddenLayers * c.KeyValueHeads * c.HeadDim * ElementSize(model.Dtype) + sizeof(long);
        cache = new KvCache(c.NumHiddenLayers);
        queue = Channel.CreateBounded<GenerationRequest>(new BoundedChannelOptions(options.MaxQueue) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
        thread = new Thread(Loop) { Name = "amalgam-engine", IsBackground = true };
        thread.Start();
    }

    public EngineOptions Options => options;

    /// <summary>Bytes one cache position takes (keys and values of every layer, plus its mask entry).</summary>
    public long BytesPerPosition => bytesPerPosition;

    /// <summary>The largest cache rows × positions the budget holds.</summary>
    public long BudgetPositions => options.KvBudgetBytes / bytesPerPosition;

    public int QueueDepth => queue.Reader.Count + (deferred is null ? 0 : 1);

    /// <summary>Completes when the engine thread has ended (after <see cref="StopAsync"/> drained everything).</summary>
    public Task Stopped => stopped.Task;

    /// <summary>Queues a request, or says why not (full queue: 429; shutting down: 503).</summary>
    public EngineRefusal TrySubmit(GenerationRequest request)
    {
        if (draining) return EngineRefusal.ShuttingDown;
        if (!queue.Writer.TryWrite(request)) return EngineRefusal.QueueFull;
        if (reportsGauges) metrics.QueueDepth.Set(QueueDepth);
        return EngineRefusal.None;
    }

    /// <summary>Loads an adapter folder and serves it under <paramref name="name"/> from the next step on.</summary>
    public Task LoadAdapterAsync(string name, string dir) => Control(() =>
    {
        if (unloading.Contains(name)) throw new InvalidOperationException($"lora_name: adapter '{name}' is being unloaded (running requests still use it); try again");
        if (adapters.ContainsKey(name)) throw new ArgumentException($"lora_name: adapter '{name}' is already loaded");
        adapters[name] = LoraAdapter.Load(dir, model);
    });

    /// <summary>Stops serving an adapter; its factors are freed once no running request uses it.</summary>
    public Task UnloadAdapterAsync(string name) => Control(() =>
    {
        if (!adapters.ContainsKey(name) || unloading.Contains(name)) throw new KeyNotFoundException($"lora_name: adapter '{name}' is not loaded");
        unloading.Add(name);
    });

    /// <summary>What <paramref name="model"/> plans for <paramref name="prompt"/>, computed on the engine thread (gateway mode routes with it).</summary>
    public async Task<ExpertPlan> PlanAsync(IServedModel model, IReadOnlyList<long> prompt)
    {
        ExpertPlan? plan = null;
        await Control(() =>
        {
            plan = model.Plan(prompt);
            plan.Validate();
        });
        return plan!;
    }

    Task Control(Action action)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (stopping) { done.SetException(new InvalidOperationException("the server is shutting down")); return done.Task; }
        control.Writer.TryWrite(() =>
        {
            try { action(); done.SetResult(); }
            catch (Exception e) { done.SetException(e); }
        });
        return done.Task;
    }

    /// <summary>Refuses new requests from now on; what is queued or running still completes.</summary>
    public void BeginDrain() => draining = true;

    /// <summary>Drains (queued and running requests complete), then ends the engine thread.</summary>
    public Task StopAsync()
    {
        draining = true;
        stopping = true;
        control.Writer.TryWrite(() => { });   // wake the thread
        return stopped.Task;
    }

    void Loop()
    {
        try
        {
            while (true)
            {
                while (control.Reader.TryRead(out var action)) action();
                DropCancelled();
                SyncLibrary();
                var admitted = Admit();
                if (admitted.Count > 0) Guarded(admitted.SelectMany(RowsOf).ToList(), () => Prefill(admitted));
                if (rows.Count > 0) Guarded(rows, Step);
                if (reportsGauges)
                {
                    metrics.QueueDepth.Set(QueueDepth);
                    metrics.RunningRows.Set(rows.Count);
                    metrics.RunningRequests.Set(rows.Select(r => r.Request).Distinct().Count());
                }
                if (rows.Count > 0 || admitted.Count > 0) continue;
                if (stopping && QueueDepth == 0) break;
                WaitForWork();
            }
        }
        finally
        {
            foreach (var r in rows.Select(r => r.Request).Distinct()) r.Finish("error", "the engine stopped");
            deferred?.Finish("error", "the engine stopped", 503);
            while (queue.Reader.TryRead(out var r)) r.Finish("error", "the engine stopped", 503);
            rows.Clear();
            cache.Dispose();
            rowMixing?.Dispose();
            rowWeights?.Dispose();
            library?.Dispose();
            foreach (var a in adapters.Values) a.Dispose();
            adapters.Clear();
            stopped.TrySetResult();
        }
    }

    void WaitForWork()
    {
        if (deferred is not null) return;
        var wake = new[] { queue.Reader.WaitToReadAsync().AsTask(), control.Reader.WaitToReadAsync().AsTask() };
        Task.WaitAny(wake, TimeSpan.FromSeconds(1));
    }

    // A failing step fails the requests in it (a 500 for them) and leaves the engine serving the others.
    void Guarded(IReadOnlyList<Row> involved, Action step)
    {
        try
        {
            step();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"amalgam serve: engine step failed: {e}");
            var failed = involved.Select(r => r.Request).ToHashSet();
            foreach (var r in failed) r.Finish("error", "internal error: " + e.Message);
            Keep(rows.Where(r => !failed.Contains(r.Request)).ToList());
        }
    }

    static IEnumerable<Row> RowsOf(GenerationRequest r) => r.Plan!.Rows.Select((_, m) => new Row(r, m));

    void DropCancelled()
    {
        var gone = rows.Select(r => r.Request).Where(r => r.Finished || r.Cancellation.IsCancellationRequested).ToHashSet();
        if (gone.Count == 0) return;
        foreach (var r in gone) r.Finish("cancelled");
        Keep(rows.Where(r => !gone.Contains(r.Request)).ToList());
    }

    // Rows leave: the cache keeps the survivors' rows only (trimmed to the longest survivor).
    void Keep(List<Row> survivors)
    {
        if (survivors.Count == rows.Count) return;
        var index = survivors.Select(s => (long)rows.IndexOf(s)).ToList();
        var next = cache.SelectRows(index);
        cache.Dispose();
        cache = next;
        rows = survivors;
        rowWeightsStale = true;
        if (rows.Count == 0)
        {
            // An idle engine holds no per-batch tensors.
            rowMixing?.Dispose();
            rowMixing = null;
            rowWeights?.Dispose();
            rowWeights = null;
        }
    }

    // The library holds every loaded adapter; one being unloaded stays until no running request reads it.
    void SyncLibrary()
    {
        var used = rows.SelectMany(r => r.Request.Plan!.Experts).ToHashSet(StringComparer.Ordinal);
        foreach (var name in unloading.Where(n => !used.Contains(n)).ToList())
        {
            unloading.Remove(name);
            if (adapters.Remove(name, out var a)) { RebuildLibrary(); a.Dispose(); }
        }
        if (!adapters.Keys.Order(StringComparer.Ordinal).SequenceEqual(libraryNames)) RebuildLibrary();
    }

    void RebuildLibrary()
    {
        library?.Dispose();
        library = null;
        libraryNames = adapters.Keys.Order(StringComparer.Ordinal).ToList();
        if (libraryNames.Count > 0) library = new ExpertLibrary(model, libraryNames.Select(n => adapters[n]).ToList());
        rowWeightsStale = true;
    }

    List<GenerationRequest> Admit()
    {
        var admitted = new List<GenerationRequest>();
        int used = rows.Count;
        long longest = rows.Count == 0 ? 0 : rows.Max(r => r.Request.MaxLength);
        while (true)
        {
            GenerationRequest? r = deferred;
            deferred = null;
            if (r is null && !queue.Reader.TryRead(out r)) break;
            if (r.Cancellation.IsCancellationRequested) { r.Finish("cancelled"); continue; }
            int need = r.Model.RowsPerRequest;
            long widest = Math.Max(longest, r.MaxLength);
            if (!Fits(used + need, widest))
            {
                if (used == 0)
                {
                    r.Finish("error", $"the request needs {need} cache row(s) of {r.MaxLength} positions, more than --max-batch {options.MaxBatch} or --kv-budget allow", 400, "max_tokens");
                    continue;
                }
                deferred = r;   // waits for rows to leave
                break;
            }
            try
            {
                var plan = r.Model.Plan(r.Prompt);
                plan.Validate();
                if (plan.Rows.Count != need) throw new InvalidOperationException($"model '{r.Model.Id}' planned {plan.Rows.Count} rows, not {need}");
                if (plan.Experts.FirstOrDefault(e => !adapters.ContainsKey(e) || unloading.Contains(e)) is { } missing)
                {
                    r.Finish("error", $"adapter '{missing}' is not loaded", 404, "model");
                    continue;
                }
                r.Plan = plan;
            }
            catch (Exception e)
            {
                r.Finish("error", $"model '{r.Model.Id}': {e.Message}", 400, "model");
                continue;
            }
            admitted.Add(r);
            used += need;
            longest = widest;
        }
        return admitted;
    }

    // Padding makes every row as long as the longest: rows × longest positions must fit the budget.
    bool Fits(int rowCount, long longest) => rowCount <= options.MaxBatch && rowCount * longest <= BudgetPositions;

    void Prefill(List<GenerationRequest> admitted)
    {
        var prefillRows = admitted.SelectMany(RowsOf).ToList();
        int n = prefillRows.Count, width = admitted.Max(r => r.Prompt.Count);
        var ids = new long[n * width];
        var mask = new long[n * width];
        for (int i = 0; i < n; i++)
        {
            var prompt = prefillRows[i].Request.Prompt;
            for (int j = 0; j < width; j++)
            {
                int k = j - (width - prompt.Count);
                ids[i * width + j] = k >= 0 ? prompt[k] : padId;
                mask[i * width + j] = k >= 0 ? 1 : 0;
            }
        }
        var fresh = new KvCache(model.Config.NumHiddenLayers);
        try
        {
            using (inference_mode())
            using (var scope = NewDisposeScope())
            {
                using var weights = WeightsFor(prefillRows);
                using var mixing = weights is null ? null : new FixedMixing(weights);
                var logits = model.forward(new DecoderInput(tensor(ids, [n, width]), tensor(mask, [n, width]), fresh, true, mixing)).Logits.select(1, 0);
                Choose(prefillRows, logits);
            }
            foreach (var r in admitted) metrics.PromptTokens.Inc(r.Prompt.Count);
            var joining = prefillRows.Where(r => !r.Request.Finished).ToList();
            if (joining.Count == 0) return;
            using var kept = joining.Count == n ? null : fresh.SelectRows(joining.Select(r => (long)prefillRows.IndexOf(r)).ToList());
            var next = KvCache.Concat(cache, kept ?? fresh);
            cache.Dispose();
            cache = next;
            rows.AddRange(joining);
            rowWeightsStale = true;
        }
        finally
        {
            fresh.Dispose();
        }
    }

    void Step()
    {
        int n = rows.Count;
        var ids = rows.Select(r => r.Request.Pending).ToArray();
        using (inference_mode())
        using (var scope = NewDisposeScope())
        {
            if (rowWeightsStale)
            {
                rowMixing?.Dispose();
                rowWeights?.Dispose();
                rowWeights = WeightsFor(rows);
                rowMixing = rowWeights is null ? null : new FixedMixing(rowWeights);
                rowWeightsStale = false;
            }
            var logits = model.forward(new DecoderInput(tensor(ids, [n, 1]), ones(n, 1, ScalarType.Int64), cache, true, rowMixing)).Logits.select(1, 0);
            Choose(rows, logits);
        }
        Keep(rows.Where(r => !r.Request.Finished).ToList());
    }

    // Per-row expert weights [rows, K] in library order, outside any dispose scope (the decode batch's are held
    // across steps with their FixedMixing, which caches the layers' gathers); null when every row is the base alone.
    Tensor? WeightsFor(IReadOnlyList<Row> batch)
    {
        if (library is null || batch.All(r => r.Request.Plan!.Rows[r.Member].Values.All(w => w == 0))) return null;
        int k = libraryNames.Count;
        var w = new float[batch.Count * k];
        for (int i = 0; i < batch.Count; i++)
            foreach (var (name, weight) in batch[i].Request.Plan!.Rows[batch[i].Member])
            {
                int column = libraryNames.IndexOf(name);
                if (column < 0) throw new InvalidOperationException($"adapter '{name}' is not in the expert library");
                w[i * k + column] = (float)weight;
            }
        using var scope = NewDisposeScope();
        return tensor(w, [batch.Count, k]).DetachFromDisposeScope();
    }

    // One next token per request from its rows' last logits [rows, vocab]: a request's rows are adjacent.
    void Choose(IReadOnlyList<Row> batch, Tensor logits)
    {
        int vocab = (int)logits.shape[1];
        var all = logits.contiguous().cpu().data<float>().ToArray();
        for (int i = 0; i < batch.Count;)
        {
            var r = batch[i].Request;
            int members = r.Plan!.Rows.Count;
            float[] scores;
            if (r.Plan.Aggregation == ExpertAggregation.Outputs)
            {
                using var w = tensor(r.Plan.OutputWeights!.Select(x => (float)x).ToArray());
                scores = EnsembleDecoder.Combine(logits.narrow(0, i, members), w, r.Plan.Combine).contiguous().data<float>().ToArray();
            }
            else scores = all.AsSpan(i * vocab, vocab).ToArray();
            i += members;
            if (r.Finished) continue;
            Next(r, scores);
        }
    }

    void Next(GenerationRequest r, float[] scores)
    {
        var s = r.Sampling;
        long token = Sampler.Choose(scores, s.Temperature, s.TopP, r.Random);
        double now = r.Clock.Elapsed.TotalSeconds;
        if (r.Generated == 0) metrics.TimeToFirstToken.Observe(now);
        else metrics.TimePerOutputToken.Observe(now - r.LastTokenSeconds);
        r.LastTokenSeconds = now;
        if (!s.IgnoreEos && stopTokens.Contains(token)) { r.Finish("stop"); return; }
        double logprob = 0;
        IReadOnlyList<(long, double)>? top = null;
        if (s.Logprobs is int count)
        {
            var logp = Sampler.LogSoftmax(scores);
            logprob = logp[token];
            top = Enumerable.Range(0, logp.Length).OrderByDescending(t => logp[t]).ThenBy(t => t).Take(count).Select(t => ((long)t, logp[t])).ToList();
        }
        r.Generated++;
        metrics.GeneratedTokens.Inc();
        r.Emit(new TokenEvent(token, logprob, top));
        if (r.Generated >= s.MaxTokens) r.Finish("length");
        else r.Pending = token;
    }

    static long ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Float64 => 8,
        _ => 4,
    };

    public void Dispose()
    {
        StopAsync().Wait(TimeSpan.FromMinutes(1));
    }
}
