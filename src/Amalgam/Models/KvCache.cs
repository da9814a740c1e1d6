using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Keys and values of every layer for the positions seen so far, plus the attention mask over them, so that
/// decoding one more token costs one position, not the whole sequence. The tensors live in buffers allocated once
/// for <c>capacity</c> positions (doubled when outgrown): a step writes its new positions in place instead of
/// concatenating, which copied the whole cache at every step. Owns its tensors: dispose it.
/// </summary>
public sealed partial class KvCache : IDisposable
{
    private readonly Tensor?[] keys;
    private readonly Tensor?[] values;
    private readonly long[] filled;
    private Tensor? mask;
    private long length;
    private readonly long capacityHint;

    /// <param name="layers">Decoder layers.</param>
    /// <param name="capacity">Positions to allocate for up front (prompt + new tokens); 0: the first step's length.</param>
    public KvCache(int layers, long capacity = 0)
    {
        keys = new Tensor?[layers];
        values = new Tensor?[layers];
        filled = new long[layers];
        capacityHint = capacity;
    }

    /// <summary>Positions held (including padding).</summary>
    public long Length => length;

    /// <summary>Positions the buffers hold before they must grow.</summary>
    public long Capacity => mask?.shape[1] ?? 0;

    /// <summary>The 0/1 mask [batch, Length] of real (1) and padding (0) positions seen so far (a view of the buffer).</summary>
    public Tensor? Mask => mask?.narrow(1, 0, length);

    /// <summary>Appends this step's keys and values [batch, kv_heads, new, head_dim]; returns all of them (views of the buffers).</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        long at = filled[layer], t = k.shape[2], end = at + t;
        Write(ref keys[layer], k, 2, at, end);
        Write(ref values[layer], v, 2, at, end);
        filled[layer] = end;
        return (keys[layer]!.narrow(2, 0, end), values[layer]!.narrow(2, 0, end));
    }

    /// <summary>Appends this step's mask [batch, new]; returns the mask over all positions.</summary>
    public Tensor AppendMask(Tensor stepMask)
    {
        long end = length + stepMask.shape[1];
        Write(ref mask, stepMask, 1, length, end);
        length = end;
        return mask!.narrow(1, 0, end);
    }

    // Copies `step` into positions [at, end) of dimension `dim`, growing the buffer when needed. The buffer
    // outlives the forward's dispose scope: it is detached from it and freed by Dispose (or when replaced).
    private void Write(ref Tensor? buffer, Tensor step, int dim, long at, long end)
    {
        if (buffer is null || buffer.shape[dim] < end)
        {
            long capacity = Math.Max(end, buffer is null ? capacityHint : 2 * buffer.shape[dim]);
            var shape = step.shape.ToArray();
            shape[dim] = capacity;
            var grown = empty(shape, dtype: step.dtype, device: step.device);
            grown.DetachFromDisposeScope();
            if (buffer is not null && at > 0)
                using (var old = buffer.narrow(dim, 0, at)) using (var dst = grown.narrow(dim, 0, at)) dst.copy_(old);
            buffer?.Dispose();
            buffer = grown;
        }
        using var slot = buffer.narrow(dim, at, end - at);
        slot.copy_(step);
    }

    public void Dispose()
    {
        for (int i = 0; i < keys.Length; i++) { keys[i]?.Dispose(); keys[i] = null; values[i]?.Dispose(); values[i] = null; }
        mask?.Dispose();
        mask = null;
    }
}
