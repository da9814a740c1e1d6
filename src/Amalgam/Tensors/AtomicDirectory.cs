using Amalgam.Inputs;

namespace Amalgam.Tensors;

/// <summary>
/// Writes a whole folder so that, at every instant, OUT names either the complete old folder or the complete new one:
/// everything goes into a hidden staging folder beside OUT (<c>.OUT.tmp-*</c>), which is swapped with the old OUT in
/// one <c>renameat2(RENAME_EXCHANGE)</c> on Linux (elsewhere: old OUT renamed to <c>.OUT.old-*</c>, staging renamed
/// to OUT, and a kill between the two is undone on the next start). One writer per OUT at a time: a second one fails
/// naming the folder (a lock file <c>.OUT.lock</c> held while writing). Stale temporaries of OUT left by killed
/// writers are removed on the next write. OUT must not be or contain the current folder.
/// </summary>
public static class AtomicDirectory
{
    public static void Write(string dir, Action<string> fill)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        string parent = Path.GetDirectoryName(full) ?? throw new IOException($"{Names.Escape(dir)}: cannot write a root folder");
        string name = Path.GetFileName(full);
        OutputGuard.CheckNotCurrentFolder(full);
        if (new FileInfo(full).LinkTarget is not null)
            throw new IOException($"{Names.Escape(dir)}: is a symbolic link; give the folder it points to, or a new name");
        if (File.Exists(full)) throw new IOException($"{Names.Escape(dir)}: a file of that name is in the way");
        Directory.CreateDirectory(parent);

        using var writerLock = OutputLock.Acquire(parent, name, dir);
        Recover(parent, name, full);
        string staging = Path.Combine(parent, $".{name}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            fill(staging);
            if (!Directory.Exists(full)) AtomicRename.MoveDirectory(staging, full);
            else if (AtomicRename.TryExchange(staging, full)) RemoveReplaced(staging); // staging now holds the old OUT
            else
            {
                string old = Path.Combine(parent, $".{name}.old-{Guid.NewGuid():N}");
                AtomicRename.MoveDirectory(full, old);
                AtomicRename.MoveDirectory(staging, full);
                RemoveReplaced(old);
            }
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    static void RemoveReplaced(string old)
    {
        FaultInjection.BeforeStep();
        Directory.Delete(old, recursive: true);
    }

    /// <summary>The hidden names this class uses for OUT's temporaries.</summary>
    internal static bool IsTemporaryOf(string entry, string name) =>
        entry.StartsWith($".{name}.tmp-", StringComparison.Ordinal) || entry.StartsWith($".{name}.old-", StringComparison.Ordinal);

    /// <summary>
    /// Under the lock no other writer is at work, so every temporary of OUT is a killed writer's: an old OUT set
    /// aside by the two-rename fallback goes back when OUT is missing, everything else is deleted.
    /// </summary>
    static void Recover(string parent, string name, string full)
    {
        var stale = Directory.EnumerateFileSystemEntries(parent, $".{name}.*")
            .Where(p => IsTemporaryOf(Path.GetFileName(p), name)).ToList();
        if (!Path.Exists(full) && stale.Where(p => Path.GetFileName(p).StartsWith($".{name}.old-", StringComparison.Ordinal))
                .OrderByDescending(Directory.GetLastWriteTimeUtc).FirstOrDefault() is { } setAside)
        {
            AtomicRename.MoveDirectory(setAside, full);
            stale.Remove(setAside);
        }
        foreach (var p in stale)
        {
            if (Directory.Exists(p) && new FileInfo(p).LinkTarget is null) Directory.Delete(p, recursive: true);
            else File.Delete(p);
        }
    }
}
