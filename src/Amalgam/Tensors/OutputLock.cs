using Amalgam.Inputs;

namespace Amalgam.Tensors;

/// <summary>
/// An exclusive, advisory lock on one output name: the file <c>.OUT.lock</c> beside OUT, opened with
/// <see cref="FileShare.None"/> (an flock on Unix, released by the kernel when the holder dies). The holder deletes
/// the file before closing it; a writer that locked a file deleted meanwhile tries again, so two writers can never
/// both hold the lock.
/// </summary>
internal sealed class OutputLock : IDisposable
{
    private readonly FileStream stream;
    private readonly string path;

    private OutputLock(FileStream stream, string path) { this.stream = stream; this.path = path; }

    public static OutputLock Acquire(string parent, string name, string shown)
    {
        string path = Path.Combine(parent, $".{name}.lock");
        for (int attempt = 0; ; attempt++)
        {
            FileStream s;
            try { s = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None); }
            catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
            {
                throw new IOException($"{Names.Escape(shown)}: another process is writing this output (it holds {Names.Escape(path)}); nothing was changed");
            }
            if (!Unlinked(s) || attempt >= 10) return new OutputLock(s, path);
            s.Dispose();
        }
    }

    /// <summary>Whether the locked file is no longer at its path (Linux: /proc/self/fd/N ends in " (deleted)").</summary>
    static bool Unlinked(FileStream s)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            string? target = new FileInfo($"/proc/self/fd/{s.SafeFileHandle.DangerousGetHandle()}").LinkTarget;
            return target is not null && target.EndsWith(" (deleted)", StringComparison.Ordinal);
        }
        catch (IOException) { return false; }
    }

    public void Dispose()
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        stream.Dispose();
    }
}
