using System.Collections.ObjectModel;
using System.IO.MemoryMappedFiles;
using TorchSharp;

namespace Amalgam.Tensors;

/// <summary>
/// A read-only, memory-mapped safetensors file. The header is validated in full before anything else is
/// trusted; tensors are then copied out one at a time on demand, so opening a large checkpoint costs only its header.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _data;
    private readonly Dictionary<string, TensorInfo> _byName;
    private bool _disposed;

    private SafeTensorsFile(string path, SafeTensorsHeader header, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePointer)
    {
        Path = path;
        _map = map;
        _view = view;
        _data = basePointer + header.DataStart;
        Tensors = header.Tensors.AsReadOnly();
        Metadata = new ReadOnlyDictionary<string, string>(header.Metadata);
        _byName = header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    public string Path { get; }

    /// <summary>All tensors, in data-offset order.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c>, empty when absent.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates <paramref name="path"/>; throws <see cref="InvalidDataException"/> on any header defect.</summary>
    public static SafeTensorsFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; big-endian hosts are not supported");

        Inputs.InputFiles.RequireRegular(path); // a FIFO would block the open forever
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        bool pointerAcquired = false;
        try
        {
            var header = SafeTensorsHeader.Read(stream, path);
            // Map the very stream the header came from, so the validated length is the mapped length.
            map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
                HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* basePointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePointer);
            pointerAcquired = true;
            return new SafeTensorsFile(path, header, map, view, basePointer + view.PointerOffset);
        }
        catch
        {
            if (pointerAcquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            if (map is not null) map.Dispose(); else stream.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public TensorInfo Info(string name) =>
        _byName.TryGetValue(name, out var info)
            ? info
            : throw new KeyNotFoundException($"{System.IO.Path.GetFileName(Path)}: no tensor {FormatError.Quote(name)}");

    /// <summary>
    /// The tensor's raw little-endian bytes inside the mapping. Valid only until this file is disposed;
    /// tensors of 2 GiB or more cannot be expressed as a span and throw.
    /// </summary>
    public ReadOnlySpan<byte> Bytes(string name)
    {
        var info = Info(name);
        ThrowIfDisposed();
        if (info.ByteLength > int.MaxValue)
            throw new NotSupportedException($"{System.IO.Path.GetFileName(Path)}: tensor {FormatError.Quote(name)} is {info.ByteLength} bytes, too large for a span; use Load");
        return new ReadOnlySpan<byte>(_data + info.Begin, (int)info.ByteLength);
    }

    /// <summary>
    /// The address of the tensor's first stored byte inside the mapping (fused merge kernels read the inputs in
    /// place). Valid only until this file is disposed.
    /// </summary>
    public byte* Address(string name)
    {
        var info = Info(name);
        ThrowIfDisposed();
        return _data + info.Begin;
    }

    /// <summary>A new CPU tensor of the stored dtype and shape, owning a copy of the stored bytes.</summary>
    public torch.Tensor Load(string name)
    {
        var info = Info(name);
        using var scope = torch.NewDisposeScope();
        var tensor = torch.empty(info.Shape, info.DType.ToScalarType(), torch.CPU);
        LoadInto(name, tensor);
        return tensor.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Copies the stored bytes straight into <paramref name="destination"/>'s storage (one copy, no intermediate
    /// tensor): it must be a contiguous CPU tensor of the stored dtype and shape.
    /// </summary>
    public void LoadInto(string name, torch.Tensor destination)
    {
        var info = Info(name);
        ThrowIfDisposed();
        if (destination.dtype != info.DType.ToScalarType() || !destination.shape.SequenceEqual(info.Shape))
            throw new ArgumentException($"{System.IO.Path.GetFileName(Path)}: tensor {FormatError.Quote(name)} is {info.DType} [{string.Join(", ", info.Shape)}], the destination {destination.dtype} [{string.Join(", ", destination.shape)}]", nameof(destination));
        byte* source = _data + info.Begin;
        TensorMemory.ForEachChunk(destination, (chunk, offset) =>
        {
            var stored = new ReadOnlySpan<byte>(source + offset, chunk.Length);
            // torch assumes bools are 0 or 1; any other byte would be undefined behaviour in later ops.
            if (info.DType == DType.BOOL && stored.IndexOfAnyExceptInRange((byte)0, (byte)1) >= 0)
                throw FormatError.Create(Path, $"tensor {FormatError.Quote(name)}: BOOL data holds a byte other than 0 or 1");
            stored.CopyTo(chunk);
        });
    }

    /// <summary>
    /// Rows [<paramref name="start"/>, start + <paramref name="count"/>) of the tensor's first dimension as a new CPU
    /// tensor of the stored dtype, copied from the mapping (row-block merges read each key a block at a time).
    /// </summary>
    public torch.Tensor LoadRows(string name, long start, long count)
    {
        var info = Info(name);
        ThrowIfDisposed();
        if (info.Shape.Length == 0 || start < 0 || count < 0 || start + count > info.Shape[0])
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) of tensor {FormatError.Quote(name)} with shape [{string.Join(", ", info.Shape)}]");
        using var scope = torch.NewDisposeScope();
        long[] shape = [count, .. info.Shape.Skip(1)];
        var tensor = torch.empty(shape, info.DType.ToScalarType(), torch.CPU);
        long rowBytes = info.Shape[0] == 0 ? 0 : info.ByteLength / info.Shape[0];
        byte* source = _data + info.Begin + start * rowBytes;
        TensorMemory.ForEachChunk(tensor, (chunk, offset) =>
        {
            var stored = new ReadOnlySpan<byte>(source + offset, chunk.Length);
            if (info.DType == DType.BOOL && stored.IndexOfAnyExceptInRange((byte)0, (byte)1) >= 0)
                throw FormatError.Create(Path, $"tensor {FormatError.Quote(name)}: BOOL data holds a byte other than 0 or 1");
            stored.CopyTo(chunk);
        });
        return tensor.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
