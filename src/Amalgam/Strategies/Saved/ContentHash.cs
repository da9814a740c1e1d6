using System.Security.Cryptography;
using System.Text;

namespace Amalgam.Strategies.Saved;

/// <summary>
/// SHA-256 of a folder's content: every regular file below it, in ordinal order of its relative path, hashed as
/// path, length and bytes. A renamed, added, removed or changed file changes the hash; timestamps do not.
/// </summary>
public static class ContentHash
{
    public static string Of(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: no such folder");
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Select(f => (Full: f, Relative: Path.GetRelativePath(dir, f).Replace('\\', '/')))
            .OrderBy(f => f.Relative, StringComparer.Ordinal);
        var buffer = new byte[1 << 20];
        foreach (var (full, relative) in files)
        {
            var info = new FileInfo(full);
            sha.AppendData(Encoding.UTF8.GetBytes($"{relative}\n{info.Length}\n"));
            using var stream = File.OpenRead(full);
            int n;
            while ((n = stream.Read(buffer, 0, buffer.Length)) > 0) sha.AppendData(buffer, 0, n);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
