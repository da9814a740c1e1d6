using System.Runtime.InteropServices;

namespace Amalgam.Inputs;

/// <summary>Absolute paths with symbolic links resolved (libc realpath), for comparing folders.</summary>
public static class RealPaths
{
    /// <summary>The absolute path with symbolic links resolved in its longest existing prefix.</summary>
    public static string Of(string path)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        if (OperatingSystem.IsWindows()) return full;
        string existing = full;
        string rest = "";
        while (!Path.Exists(existing) && Path.GetDirectoryName(existing) is { } up)
        {
            rest = rest.Length == 0 ? Path.GetFileName(existing) : Path.Combine(Path.GetFileName(existing), rest);
            existing = up;
        }
        string resolved = Resolve(existing) ?? existing;
        return Path.TrimEndingDirectorySeparator(rest.Length == 0 ? resolved : Path.Combine(resolved, rest));
    }

    [DllImport("libc", EntryPoint = "realpath", SetLastError = true)]
    static extern IntPtr RealPathNative([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc", EntryPoint = "free")]
    static extern void Free(IntPtr p);

    static string? Resolve(string path)
    {
        try
        {
            IntPtr p = RealPathNative(path, IntPtr.Zero);
            if (p == IntPtr.Zero) return null;
            try { return Marshal.PtrToStringUTF8(p); }
            finally { Free(p); }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return null; }
    }
}
