using System.Diagnostics;
using System.Globalization;

namespace Amalgam.Tensors;

/// <summary>
/// A test hook for the atomic-output promise: with <c>AMALGAM_FAULT_KILL_AT_RENAME=N</c> the process kills itself
/// (SIGKILL, no cleanup) just before its N-th commit step, counted over the process: every <see cref="AtomicFile"/>
/// and <see cref="AtomicDirectory"/> rename, and the removal of a replaced output after its swap (so that the last
/// N kills a process whose new output is already in place). Unset, it costs one integer compare per step.
/// </summary>
internal static class FaultInjection
{
    static readonly long KillAt = long.TryParse(Environment.GetEnvironmentVariable("AMALGAM_FAULT_KILL_AT_RENAME"),
        NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : 0;

    static long renames;

    public static void BeforeStep()
    {
        if (KillAt <= 0) return;
        if (Interlocked.Increment(ref renames) == KillAt)
        {
            Console.Error.Flush();
            Process.GetCurrentProcess().Kill();
            Thread.Sleep(Timeout.Infinite);
        }
    }
}
