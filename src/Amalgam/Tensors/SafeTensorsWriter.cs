using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using TorchSharp;

namespace Amalgam.Tensors;

/// <summary>
/// Streams a safetensors file: the header is written from the declared tensor list up front, then each tensor's bytes
/// as it is passed to <see cref="Write"/>, so at most one tensor is held at a time. The file appears under its final
/// name only on <see cref="Commit"/>; disposing earlier, or any failed <see cref="Write"/>, leaves nothing behind.
/// </summary>
public sealed class SafeTensorsWriter : IDisposable
{
    private readonly IReadOnlyList<TensorSpec> _specs;
    private AtomicFile? _file;
    private int _next;

    public SafeTensorsWriter(string path, IReadOnlyList<TensorSpec> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; big-endian hosts are not supported");
        Path = path;
        _specs = tensors.ToArray();
        var header = BuildHeader(_specs, metadata);
        _file = new AtomicFile(path);
        try
        {
            Span<byte> length = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            _file.Stream.Write(length);
            _file.Stream.Write(header);
        }
        catch
        {
            Abort();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>
    /// The header JSON: <c>__metadata__</c> first, tensors in the given order with contiguous data offsets, padded with
    /// spaces so that the data area (at 8 + N) starts on an 8-byte boundary.
    /// </summary>
    internal static byte[] BuildHeader(IReadOnlyList<TensorSpec> specs, IReadOnlyDictionary<string, string>? metadata)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var spec in specs)
        {
            if (spec.Name == SafeTensorsHeader.MetadataKey)
                throw new ArgumentException($"'{SafeTensorsHeader.MetadataKey}' is reserved and cannot name a tensor");
            if (!names.Add(spec.Name))
                throw new ArgumentException($"tensor '{spec.Name}' is declared twice");
            if (spec.Shape.Any(d => d < 0))
                throw new ArgumentException($"tensor '{spec.Name}' has a negative dimension in shape {TensorSpec.FormatShape(spec.Shape)}");
        }

        using var buffer = new MemoryStream();
        // Relaxed escaping keeps names such as "a+b" readable; the output is still valid JSON.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(SafeTensorsHeader.MetadataKey);
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var spec in specs)
            {
                long end = checked(offset + spec.ByteLength);
                json.WriteStartObject(spec.Name);
                json.WriteString("dtype", spec.DType.SafeTensorsName());
                json.WriteStartArray("shape");
                foreach (var d in spec.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(end);
                json.WriteEndArray();
                json.WriteEndObject();
                offset = end;
            }
            json.WriteEndObject();
        }

        int padding = (int)((8 - (8 + buffer.Length) % 8) % 8);
        for (int i = 0; i < padding; i++) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    /// <summary>Writes the next declared tensor; name, dtype and shape must match the declaration.</summary>
    public void Write(string name, torch.Tensor tensor)
    {
        var file = _file ?? throw new InvalidOperationException($"{FileName}: writer is closed (committed, disposed or failed)");
        try
        {
            if (_next >= _specs.Count)
                throw new InvalidOperationException($"{FileName}: tensor '{name}' written but all {_specs.Count} declared tensors are already written");
            var spec = _specs[_next];
            if (name != spec.Name)
                throw new InvalidOperationException($"{FileName}: expected tensor '{spec.Name}' next, got '{name}'");
            if (!tensor.dtype.TryToDType(out var dtype) || dtype != spec.DType)
                throw new ArgumentException($"{FileName}: tensor '{name}' is {tensor.dtype}, declared {spec.DType.SafeTensorsName()}");
            if (!tensor.shape.SequenceEqual(spec.Shape))
                throw new ArgumentException($"{FileName}: tensor '{name}' has shape {TensorSpec.FormatShape(tensor.shape)}, declared {TensorSpec.FormatShape(spec.Shape)}");

            WriteBytes(file.Stream, tensor);
            _next++;
        }
        catch
        {
            // A partly written tensor would misalign every later one: give up on the whole file.
            Abort();
            throw;
        }
    }

    private static void WriteBytes(Stream stream, torch.Tensor tensor)
    {
        using var scope = torch.NewDisposeScope();
        var source = tensor.device_type == DeviceType.CPU ? tensor : tensor.cpu();
        source = source.contiguous();
        TensorMemory.ForEachChunk(source, (chunk, _) => stream.Write(chunk));
    }

    /// <summary>Flushes to disk and moves the file to its final name; every declared tensor must have been written.</summary>
    public void Commit()
    {
        var file = _file ?? throw new InvalidOperationException($"{FileName}: writer is closed (committed, disposed or failed)");
        if (_next != _specs.Count)
        {
            Abort();
            throw new InvalidOperationException($"{FileName}: commit after {_next} of {_specs.Count} declared tensors; next missing is '{_specs[_next].Name}'");
        }
        try
        {
            file.Commit();
        }
        finally
        {
            _file = null;
            file.Dispose();
        }
    }

    /// <summary>Disposing before <see cref="Commit"/> deletes the temporary file.</summary>
    public void Dispose() => Abort();

    private void Abort()
    {
        _file?.Dispose();
        _file = null;
    }

    private string FileName => System.IO.Path.GetFileName(Path);

    /// <summary>Writes <paramref name="tensors"/> in ordinal name order, atomically.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = tensors.Keys.OrderBy(n => n, StringComparer.Ordinal).ToArray();
        var specs = names.Select(n => new TensorSpec(n, tensors[n].dtype.ToDType(), tensors[n].shape)).ToArray();
        using var writer = new SafeTensorsWriter(path, specs, metadata);
        foreach (var n in names) writer.Write(n, tensors[n]);
        writer.Commit();
    }
}
