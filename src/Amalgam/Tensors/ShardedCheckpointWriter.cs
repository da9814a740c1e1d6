using System.Text.Json;
using TorchSharp;

namespace Amalgam.Tensors;

/// <summary>
/// Streams a checkpoint into a folder, split into shards of at most <c>maxShardBytes</c> of tensor data (a single
/// larger tensor gets a shard of its own). One shard is written as <c>model.safetensors</c> with no index; several as
/// <c>model-0000i-of-0000n.safetensors</c> plus <c>model.safetensors.index.json</c>. Each file is atomic and the index
/// is written last, so a reader never finds an index pointing at a missing shard.
/// </summary>
public sealed class ShardedCheckpointWriter : IDisposable
{
    private readonly string _folder;
    private readonly string _baseName;
    private readonly IReadOnlyDictionary<string, string>? _metadata;
    private readonly List<List<TensorSpec>> _shards;
    private readonly List<string> _shardNames;
    private SafeTensorsWriter? _current;
    private int _shard;      // index of the shard being written
    private int _inShard;    // tensors written into it so far
    private bool _closed;

    public ShardedCheckpointWriter(string folder, IReadOnlyList<TensorSpec> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null, string baseName = CheckpointFileNames.Model)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(maxShardBytes, 0);
        // Header checks (duplicates, reserved names) up front, before any file is created.
        SafeTensorsWriter.BuildHeader(tensors, metadata);
        _folder = folder;
        _baseName = baseName;
        _metadata = metadata;
        _shards = Plan(tensors, maxShardBytes);
        _shardNames = _shards.Count == 1
            ? [CheckpointFileNames.Single(baseName)]
            : Enumerable.Range(1, _shards.Count).Select(i => CheckpointFileNames.Shard(i, _shards.Count, baseName)).ToList();
        TotalSize = tensors.Sum(t => t.ByteLength);
        Directory.CreateDirectory(folder);
    }

    /// <summary>The files this writer produces, in order (shards, then the index when there is one).</summary>
    public IReadOnlyList<string> FileNames =>
        _shards.Count == 1 ? _shardNames : [.. _shardNames, CheckpointFileNames.Index(_baseName)];

    /// <summary>Sum of all tensors' byte lengths, as recorded in the index's <c>metadata.total_size</c>.</summary>
    public long TotalSize { get; }

    /// <summary>Greedy, in declared order: a shard closes when the next tensor would push it past the limit.</summary>
    private static List<List<TensorSpec>> Plan(IReadOnlyList<TensorSpec> tensors, long maxShardBytes)
    {
        var shards = new List<List<TensorSpec>> { new() };
        long size = 0;
        foreach (var t in tensors)
        {
            if (shards[^1].Count > 0 && size + t.ByteLength > maxShardBytes)
            {
                shards.Add([]);
                size = 0;
            }
            shards[^1].Add(t);
            size += t.ByteLength;
        }
        return shards;
    }

    /// <summary>Writes the next declared tensor; a shard is committed as soon as its last tensor is written.</summary>
    public void Write(string name, torch.Tensor tensor)
    {
        if (_closed) throw new InvalidOperationException($"{_folder}: checkpoint writer is closed (committed, disposed or failed)");
        try
        {
            if (_shard >= _shards.Count || (_shard == _shards.Count - 1 && _inShard == _shards[_shard].Count))
                throw new InvalidOperationException($"{_folder}: tensor '{name}' written but all declared tensors are already written");
            _current ??= new SafeTensorsWriter(System.IO.Path.Combine(_folder, _shardNames[_shard]), _shards[_shard], _metadata);
            _current.Write(name, tensor);
            if (++_inShard == _shards[_shard].Count && _shard < _shards.Count - 1)
                CommitCurrentShard();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private void CommitCurrentShard()
    {
        _current!.Commit();
        _current.Dispose();
        _current = null;
        _shard++;
        _inShard = 0;
    }

    /// <summary>Commits the last shard, then the index (when sharded); every declared tensor must have been written.</summary>
    public void Commit()
    {
        if (_closed) throw new InvalidOperationException($"{_folder}: checkpoint writer is closed (committed, disposed or failed)");
        try
        {
            if (_shards[0].Count == 0)
            {
                // No tensors at all: still an (empty) valid checkpoint file.
                _current ??= new SafeTensorsWriter(System.IO.Path.Combine(_folder, _shardNames[0]), [], _metadata);
            }
            if (_current is null || _inShard != _shards[_shard].Count)
                throw new InvalidOperationException($"{_folder}: commit before every declared tensor was written");
            _current.Commit();
            _current.Dispose();
            _current = null;
            if (_shards.Count > 1) WriteIndex();
            RemoveCompetingEntryPoint();
            _closed = true;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private void WriteIndex()
    {
        using var file = new AtomicFile(System.IO.Path.Combine(_folder, CheckpointFileNames.Index(_baseName)));
        using (var json = new Utf8JsonWriter(file.Stream, new JsonWriterOptions
               {
                   Indented = true,
                   Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
               }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", TotalSize);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            var entries = _shards.SelectMany((specs, i) => specs.Select(s => (s.Name, Shard: _shardNames[i])));
            foreach (var (name, shard) in entries.OrderBy(e => e.Name, StringComparer.Ordinal))
                json.WriteString(name, shard);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        file.Stream.WriteByte((byte)'\n');
        file.Commit();
    }

    /// <summary>
    /// A stale single file left beside a new index (or a stale index beside a new single file) would be what readers
    /// pick, so the one this checkpoint did not write goes, once the new entry point is in place.
    /// </summary>
    private void RemoveCompetingEntryPoint()
    {
        var stale = _shards.Count > 1 ? CheckpointFileNames.Single(_baseName) : CheckpointFileNames.Index(_baseName);
        File.Delete(System.IO.Path.Combine(_folder, stale));
    }

    /// <summary>Before <see cref="Commit"/>: deletes the shard in progress. Shards already committed stay, but no index names them.</summary>
    public void Dispose()
    {
        _current?.Dispose();
        _current = null;
        _closed = true;
    }
}
