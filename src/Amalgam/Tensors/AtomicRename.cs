using System.Runtime.InteropServices;

namespace Amalgam.Tensors;

/// <summary>
/// The renames outputs are committed with. On Linux two folders are swapped in one step with
/// <c>renameat2(RENAME_EXCHANGE)</c>, so a path never stops naming a complete folder; elsewhere (or on a file system
/// without it) callers fall back to two renames and recover on the next start.
/// </summary>
internal static partial class AtomicRename
{
    const int AtFdCwd = -100;
    const uint RenameExchange = 2;
    const int EINVAL = 22, ENOSYS = 38, EPERM = 1, ENOTSUP = 95;

    [DllImport("libc", EntryPoint = "renameat2", SetLastError = true)]
    static extern int RenameAt2(int oldDirFd, [MarshalAs(UnmanagedType.LPUTF8Str)] string oldPath,
        int newDirFd, [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath, uint flags);

    /// <summary>Set by tests (AMALGAM_NO_RENAME_EXCHANGE=1) to exercise the two-rename fallback.</summary>
    static readonly bool Disabled = Environment.GetEnvironmentVariable("AMALGAM_NO_RENAME_EXCHANGE") == "1";

    /// <summary>Swaps two existing paths in one step; false when this system or file system cannot (nothing changed then).</summary>
    public static bool TryExchange(string a, string b)
    {
        if (Disabled || !OperatingSystem.IsLinux()) return false;
        FaultInjection.BeforeStep();
        int rc;
        try { rc = RenameAt2(AtFdCwd, a, AtFdCwd, b, RenameExchange); }
        catch (EntryPointNotFoundException) { return false; } // glibc older than 2.28
        catch (DllNotFoundException) { return false; }
        if (rc == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno is EINVAL or ENOSYS or EPERM or ENOTSUP) return false;
        throw new IOException($"{b}: cannot swap in the new output ({Marshal.GetPInvokeErrorMessage(errno)})");
    }

    public static void MoveDirectory(string from, string to)
    {
        FaultInjection.BeforeStep();
        Directory.Move(from, to);
    }

    public static void MoveFile(string from, string to)
    {
        FaultInjection.BeforeStep();
        File.Move(from, to, overwrite: true);
    }
}
