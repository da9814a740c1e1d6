namespace Amalgam.Tensors;

/// <summary>
/// A file written under a hidden temporary name in the destination folder and renamed over the final name only on
/// <see cref="Commit"/>: readers see the old file or the complete new one, never a partial one. Disposing without
/// committing deletes the temporary file. The temporary name carries the writer's process id, so temporaries left by
/// killed writers (their process gone) are removed by the next writer of the same file.
/// </summary>
public sealed class AtomicFile : IDisposable
{
    private FileStream? _stream;
    private bool _committed;

    public AtomicFile(string finalPath)
    {
        FinalPath = System.IO.Path.GetFullPath(finalPath);
        var folder = System.IO.Path.GetDirectoryName(FinalPath)!;
        // Same folder, so the final rename never crosses file systems and stays atomic.
        string name = System.IO.Path.GetFileName(FinalPath);
        RemoveStale(folder, name);
        TempPath = System.IO.Path.Combine(folder, $".{name}.tmp-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..12]}");
        _stream = new FileStream(TempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
    }

    public string FinalPath { get; }

    /// <summary>Writes a whole text file atomically.</summary>
    public static void WriteAllText(string path, string text)
    {
        using var file = new AtomicFile(path);
        using (var writer = new StreamWriter(file.Stream, leaveOpen: true)) writer.Write(text);
        file.Commit();
    }

    public string TempPath { get; }

    public FileStream Stream => _stream ?? throw new ObjectDisposedException(nameof(AtomicFile));

    /// <summary>Flushes to disk, then renames the temporary file over the final name.</summary>
    public void Commit()
    {
        var stream = Stream;
        stream.Flush(flushToDisk: true);
        stream.Dispose();
        _stream = null;
        AtomicRename.MoveFile(TempPath, FinalPath);
        _committed = true;
    }

    /// <summary>Deletes <c>.NAME.tmp-PID-*</c> files whose process no longer runs (Linux: no /proc/PID).</summary>
    static void RemoveStale(string folder, string name)
    {
        if (!OperatingSystem.IsLinux() || !Directory.Exists(folder)) return;
        string prefix = $".{name}.tmp-";
        foreach (var p in Directory.EnumerateFiles(folder, prefix + "*"))
        {
            var rest = System.IO.Path.GetFileName(p).AsSpan(prefix.Length);
            int dash = rest.IndexOf('-');
            if (dash <= 0 || !int.TryParse(rest[..dash], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid)) continue;
            if (pid == Environment.ProcessId || Directory.Exists($"/proc/{pid}")) continue;
            try { File.Delete(p); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
        if (!_committed)
        {
            try { File.Delete(TempPath); }
            catch (IOException) { } // best effort: a stray hidden temp file is harmless, a masked exception is not
            catch (UnauthorizedAccessException) { }
        }
    }
}
