namespace Amalgam.Tensors;

/// <summary>
/// Writes a whole folder so that it appears complete or not at all: everything goes into a hidden staging folder
/// beside the target, which is renamed into place at the end (an existing target is replaced only then).
/// </summary>
public static class AtomicDirectory
{
    public static void Write(string dir, Action<string> fill)
    {
        string full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"{dir}: cannot write a root folder");
        Directory.CreateDirectory(parent);
        string name = Path.GetFileName(full);
        string staging = Path.Combine(parent, $".{name}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            fill(staging);
            if (Directory.Exists(full))
            {
                string old = Path.Combine(parent, $".{name}.old-{Guid.NewGuid():N}");
                Directory.Move(full, old);
                Directory.Move(staging, full);
                Directory.Delete(old, recursive: true);
            }
            else
            {
                if (File.Exists(full)) throw new IOException($"{dir}: a file of that name is in the way");
                Directory.Move(staging, full);
            }
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }
}
