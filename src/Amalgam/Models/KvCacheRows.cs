using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Rows joining and leaving a cache between decoding steps (continuous batching). A cache row is one sequence:
/// its real positions are contiguous and right-aligned, left padding carries mask 0 (and zero keys and values),
/// so positions and attention are those of the sequence alone. Both operations return a new cache that owns new
/// tensors; the inputs are left as they were (dispose them when done).
/// </summary>
public sealed partial class KvCache
{
    /// <summary>Rows (sequences) held; 0 for an empty cache.</summary>
    public long Rows => mask?.shape[0] ?? 0;

    /// <summary>Number of layers the cache has slots for.</summary>
    public int Layers => keys.Length;

    /// <summary>
    /// The rows of <paramref name="first"/> followed by those of <paramref name="second"/>, the shorter one
    /// left-padded to the longer one's length. Either may be empty.
    /// </summary>
    public static KvCache Concat(KvCache first, KvCache second)
    {
        if (first.Layers != second.Layers) throw new ArgumentException($"caches of {first.Layers} and {second.Layers} layers cannot be joined");
        var result = new KvCache(first.Layers);
        if (first.mask is null && second.mask is null) return result;
        using var scope = NewDisposeScope();
        long length = Math.Max(first.Length, second.Length);
        var parts = new[] { first, second }.Where(c => c.mask is not null).ToArray();
        result.mask = cat(parts.Select(c => LeftPad(c.mask!, length - c.Length, 1)).ToArray(), 0).DetachFromDisposeScope();
        for (int layer = 0; layer < result.Layers; layer++)
        {
            if (parts.Any(c => c.keys[layer] is null)) continue;
            result.keys[layer] = cat(parts.Select(c => LeftPad(c.keys[layer]!, length - c.Length, 2)).ToArray(), 0).DetachFromDisposeScope();
            result.values[layer] = cat(parts.Select(c => LeftPad(c.values[layer]!, length - c.Length, 2)).ToArray(), 0).DetachFromDisposeScope();
        }
        return result;
    }

    /// <summary>
    /// A cache of the given rows only (in that order), with the leading positions that are padding in every
    /// kept row dropped, so the cache is as long as its longest kept sequence.
    /// </summary>
    public KvCache SelectRows(IReadOnlyList<long> rows)
    {
        var result = new KvCache(Layers);
        if (mask is null || rows.Count == 0) return result;
        using var scope = NewDisposeScope();
        var index = tensor(rows.ToArray(), ScalarType.Int64, mask.device);
        var kept = mask.index_select(0, index);
        var used = kept.sum(0L).cpu().data<long>().ToArray();
        long start = Array.FindIndex(used, u => u != 0);
        if (start < 0) start = used.Length;
        long length = Length - start;
        result.mask = kept.narrow(1, start, length).contiguous().DetachFromDisposeScope();
        for (int layer = 0; layer < Layers; layer++)
        {
            if (keys[layer] is null) continue;
            result.keys[layer] = keys[layer]!.index_select(0, index).narrow(2, start, length).contiguous().DetachFromDisposeScope();
            result.values[layer] = values[layer]!.index_select(0, index).narrow(2, start, length).contiguous().DetachFromDisposeScope();
        }
        return result;
    }

    /// <summary>Bytes held by the cache's tensors.</summary>
    public long Bytes => keys.Concat(values).Sum(t => t is null ? 0 : t.numel() * t.element_size()) + (mask is null ? 0 : mask.numel() * mask.element_size());

    // Zeros (mask 0 for a mask) in front of dimension `dim`.
    static Tensor LeftPad(Tensor t, long count, int dim)
    {
        if (count == 0) return t;
        var shape = t.shape.ToArray();
        shape[dim] = count;
        return cat([zeros(shape, t.dtype, t.device), t], dim);
    }
}
