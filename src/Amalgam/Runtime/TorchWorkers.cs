using System.Runtime.ExceptionServices;
using static TorchSharp.torch;

namespace Amalgam.Runtime;

/// <summary>
/// Independent pieces of libtorch work (one task's evaluation, one validation chunk, one part of a fit's batch) run side by side on
/// the process's thread budget: W worker threads, each running libtorch single-threaded. On the small models of a
/// suite each op is too small for intra-op parallelism to pay (libtorch runs most of them on one thread anyway), so
/// a second request set on the second core nearly doubles throughput: `amalgam eval` of one expert on the bundled
/// suite's validation split took 9.12 s with 1 thread, 9.57 s with 2, and two 1-thread runs side by side 9.03 s and
/// 9.81 s (2026-12-02, quiet). A single item, one worker, or a call from inside a worker runs inline with the
/// process's own thread count. Work items must not share mutable state (predictors and models are read-only at
/// inference; each call builds its own caches and mixing policies); grad mode and dispose scopes are per thread, so
/// an item sets its own and hands back tensors detached from its scope.
/// </summary>
public static class TorchWorkers
{
    [ThreadStatic] static bool insideWorker;

    /// <summary>The workers a <see cref="Map{T, TResult}"/> uses: the process's configured thread count (--threads).</summary>
    public static int Count => Math.Max(1, TorchThreads.Current?.IntraOp ?? 1);

    /// <summary>
    /// <paramref name="work"/> of every item, in item order. The first exception (in item order) is rethrown with its
    /// stack once every started item has finished; items not yet started are not run.
    /// </summary>
    public static TResult[] Map<T, TResult>(IReadOnlyList<T> items, Func<T, TResult> work, int? workers = null)
    {
        int w = Math.Min(workers ?? Count, items.Count);
        var results = new TResult[items.Count];
        if (w <= 1 || insideWorker)
        {
            for (int i = 0; i < items.Count; i++) results[i] = work(items[i]);
            return results;
        }
        int restore = get_num_threads();
        var errors = new Exception?[items.Count];
        int next = -1, failed = 0;
        void Loop()
        {
            insideWorker = true;
            // libgomp keeps the thread count per thread: each worker sets its own (and MKL's) to 1.
            set_num_threads(1);
            try
            {
                for (int i; Volatile.Read(ref failed) == 0 && (i = Interlocked.Increment(ref next)) < items.Count;)
                {
                    try { results[i] = work(items[i]); }
                    catch (Exception e) { errors[i] = e; Volatile.Write(ref failed, 1); }
                }
            }
            finally { insideWorker = false; }
        }
        var threads = Enumerable.Range(0, w - 1).Select(n => new Thread(Loop, 16 << 20) { IsBackground = true, Name = $"amalgam-worker-{n + 1}" }).ToList();
        foreach (var t in threads) t.Start();
        try { Loop(); }
        finally
        {
            foreach (var t in threads) t.Join();
            set_num_threads(restore);
        }
        if (errors.FirstOrDefault(e => e is not null) is { } first) ExceptionDispatchInfo.Capture(first).Throw();
        return results;
    }
}
