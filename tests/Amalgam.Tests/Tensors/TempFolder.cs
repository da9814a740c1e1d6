using System.Buffers.Binary;
using System.Text;

namespace Amalgam.Tests.Tensors;

/// <summary>A fresh folder per test, deleted afterwards, plus helpers to write safetensors files byte by byte.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "amalgam-tensors-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Every entry in the folder, hidden temporary files included.</summary>
    public string[] Entries() =>
        Directory.GetFileSystemEntries(Path).Select(System.IO.Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).ToArray()!;

    /// <summary>Writes 8-byte little-endian N, the header bytes, then the data, exactly as given.</summary>
    public string WriteRaw(string name, byte[] header, byte[]? data = null, ulong? declaredLength = null)
    {
        var bytes = new byte[8 + header.Length + (data?.Length ?? 0)];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data?.CopyTo(bytes, 8 + header.Length);
        var path = File(name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    public string WriteRaw(string name, string header, byte[]? data = null) =>
        WriteRaw(name, Encoding.UTF8.GetBytes(header), data);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
