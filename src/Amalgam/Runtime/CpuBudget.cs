using System.Globalization;
using System.Runtime.InteropServices;

namespace Amalgam.Runtime;

/// <summary>
/// How many cores this process may really use: the CPUs in its affinity mask (<c>sched_getaffinity</c>), capped by
/// the cgroup's CPU quota (v2 <c>cpu.max</c>, or v1 <c>cpu.cfs_quota_us</c> / <c>cpu.cfs_period_us</c>), rounded up,
/// at least 1. libtorch's own default counts every online CPU, which oversubscribes a container or a pinned job.
/// </summary>
public static class CpuBudget
{
    /// <summary>The cores this process may use right now.</summary>
    public static int Available()
    {
        int cores = AffinityCount() ?? Environment.ProcessorCount;
        if (QuotaCores() is { } quota) cores = Math.Min(cores, quota);
        return Math.Max(1, cores);
    }

    [DllImport("libc", SetLastError = true)]
    static extern int sched_getaffinity(int pid, nint cpusetsize, byte[] mask);

    /// <summary>CPUs in the affinity mask of this process, or null off Linux.</summary>
    public static int? AffinityCount()
    {
        if (!OperatingSystem.IsLinux()) return null;
        var mask = new byte[1024 / 8];
        for (int attempt = 0; attempt < 6; attempt++, mask = new byte[mask.Length * 2])
        {
            if (sched_getaffinity(0, mask.Length, mask) == 0) return mask.Sum(b => System.Numerics.BitOperations.PopCount(b));
            if (Marshal.GetLastPInvokeError() != 22 /* EINVAL: the kernel's mask is larger */) return null;
        }
        return null;
    }

    /// <summary>The tightest CPU quota over this process's cgroup and its ancestors, in whole cores (rounded up); null when unlimited.</summary>
    public static int? QuotaCores(string procSelfCgroup = "/proc/self/cgroup", string cgroupRoot = "/sys/fs/cgroup")
    {
        if (!File.Exists(procSelfCgroup)) return null;
        double? tightest = null;
        void Take(double? cores) { if (cores is { } c && (tightest is null || c < tightest)) tightest = c; }
        foreach (var line in File.ReadLines(procSelfCgroup))
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3) continue;
            if (parts[0] == "0" && parts[1] == "")
                foreach (var dir in SelfAndAncestors(cgroupRoot, parts[2]))
                    Take(ReadText(Path.Combine(dir, "cpu.max")) is { } max ? ParseCpuMax(max) : null);
            else if (parts[1].Split(',').Contains("cpu"))
                foreach (var dir in SelfAndAncestors(Path.Combine(cgroupRoot, "cpu"), parts[2]))
                    Take(ParseCfs(ReadText(Path.Combine(dir, "cpu.cfs_quota_us")), ReadText(Path.Combine(dir, "cpu.cfs_period_us"))));
        }
        return tightest is { } t ? Math.Max(1, (int)Math.Ceiling(t - 1e-9)) : null;
    }

    /// <summary>cgroup v2 <c>cpu.max</c>: "QUOTA PERIOD" in µs, or "max PERIOD" for no limit. Returns cores (quota / period).</summary>
    public static double? ParseCpuMax(string text)
    {
        var f = text.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length < 1 || f[0] == "max") return null;
        if (!long.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out long quota) || quota <= 0) return null;
        long period = 100_000;
        if (f.Length > 1 && (!long.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out period) || period <= 0)) return null;
        return (double)quota / period;
    }

    /// <summary>cgroup v1: a quota of -1 means no limit.</summary>
    public static double? ParseCfs(string? quotaText, string? periodText)
    {
        if (quotaText is null || periodText is null) return null;
        if (!long.TryParse(quotaText.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long quota) || quota <= 0) return null;
        if (!long.TryParse(periodText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long period) || period <= 0) return null;
        return (double)quota / period;
    }

    /// <summary>The cgroup's folder, then each parent up to the hierarchy's root (a parent's limit binds its children).</summary>
    static IEnumerable<string> SelfAndAncestors(string root, string relative)
    {
        var parts = relative.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int n = parts.Length; n >= 0; n--) yield return Path.Combine([root, .. parts.Take(n)]);
    }

    static string? ReadText(string path)
    {
        try { return File.Exists(path) ? File.ReadAllText(path) : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
