using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Amalgam.Runtime;

/// <summary>What <see cref="TorchThreads.Configure"/> settled on, and where the count came from.</summary>
/// <param name="IntraOp">libtorch's intra-op (OpenMP/MKL) threads.</param>
/// <param name="InterOp">libtorch's inter-op pool (unused by eager code; kept at 1).</param>
/// <param name="Source">"--threads", "OMP_NUM_THREADS" or "available cores".</param>
/// <param name="WaitPolicy">OMP_WAIT_POLICY as the OpenMP runtime saw it when it loaded.</param>
/// <param name="WaitPolicyBeforeLoad">False when libtorch's OpenMP runtime was loaded before the policy could be set.</param>
public sealed record ThreadSettings(int IntraOp, int InterOp, string Source, string WaitPolicy, bool WaitPolicyBeforeLoad);

/// <summary>
/// Threads on purpose, set once per process before real work: the CLI (its global <c>--threads</c>), the server and
/// the tests call <see cref="Configure"/>. libtorch-cpu 2.10 runs its intra-op work on GNU OpenMP (its bundled
/// libgomp; MKL is linked in and follows the same count), whose workers spin for a while after each parallel region
/// by default: on shared cores that spinning steals the time the other processes need (two evaluations side by side
/// took 4.2× their quiet time). <c>OMP_WAIT_POLICY=PASSIVE</c> makes them sleep at once; libgomp reads it only when
/// it loads, so it is put into the process environment (libc <c>setenv</c>, which the native loader sees; .NET's
/// <see cref="Environment.SetEnvironmentVariable(string, string)"/> alone does not reach it) before the first
/// TorchSharp call. KMP_BLOCKTIME is Intel OpenMP's knob and has no effect on libgomp.
/// </summary>
public static class TorchThreads
{
    static readonly object Gate = new();
    static ThreadSettings? current;

    /// <summary>The settings in force, or null before <see cref="Configure"/>.</summary>
    public static ThreadSettings? Current { get { lock (Gate) return current; } }

    [DllImport("libc", SetLastError = true)]
    static extern int setenv(string name, string value, int overwrite);

    /// <summary>
    /// Sets OMP_WAIT_POLICY=PASSIVE unless the environment already chose a policy. Call it before anything touches
    /// TorchSharp; returns false when the OpenMP runtime is already loaded (then the policy can no longer change).
    /// </summary>
    public static bool PreferPassiveWaiting()
    {
        bool beforeLoad = !OpenMpLoaded();
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_WAIT_POLICY")))
        {
            if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
            Environment.SetEnvironmentVariable("OMP_WAIT_POLICY", "PASSIVE"); // child processes, and Windows' CRT
        }
        return beforeLoad;
    }

    /// <summary>
    /// Sets libtorch's thread counts: <paramref name="threads"/> when given, else OMP_NUM_THREADS when the
    /// environment sets it, else <see cref="CpuBudget.Available"/>. The first call also sets the wait policy and the
    /// inter-op pool (which libtorch allows once); later calls may change the intra-op count only.
    /// </summary>
    public static ThreadSettings Configure(int? threads = null)
    {
        if (threads is < 1) throw new ArgumentOutOfRangeException(nameof(threads), $"--threads: must be at least 1, got {threads}");
        lock (Gate)
        {
            var (count, source) = threads is { } t ? (t, "--threads")
                : FromEnvironment() is { } e ? (e, "OMP_NUM_THREADS")
                : (CpuBudget.Available(), "available cores");
            if (current is not null)
            {
                if (current.IntraOp != count) set_num_threads(count);
                return current = current with { IntraOp = count, Source = source };
            }
            bool beforeLoad = PreferPassiveWaiting();
            set_num_threads(count);
            if (get_num_interop_threads() != 1)
            {
                try { set_num_interop_threads(1); }
                catch (Exception) { /* already started by an earlier parallel call; harmless for eager code */ }
            }
            return current = new ThreadSettings(get_num_threads(), get_num_interop_threads(), source,
                Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "", beforeLoad);
        }
    }

    /// <summary>OMP_NUM_THREADS as a positive count (the first entry of a nested list), or null.</summary>
    public static int? FromEnvironment()
    {
        var text = Environment.GetEnvironmentVariable("OMP_NUM_THREADS");
        if (string.IsNullOrWhiteSpace(text)) return null;
        return int.TryParse(text.Split(',')[0].Trim(), out int n) && n >= 1 ? n : null;
    }

    /// <summary>Whether an OpenMP runtime is mapped into this process (Linux: /proc/self/maps).</summary>
    public static bool OpenMpLoaded()
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps)) return false;
        foreach (var line in File.ReadLines(maps))
            if (line.Contains("libgomp", StringComparison.Ordinal) || line.Contains("libiomp", StringComparison.Ordinal) || line.Contains("libomp", StringComparison.Ordinal))
                return true;
        return false;
    }
}
