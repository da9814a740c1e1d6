using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Keys and values of every layer for the positions seen so far, plus the attention mask over them, so that
/// decoding one more token costs one position, not the whole sequence. Owns its tensors: dispose it.
/// </summary>
public sealed partial class KvCache : IDisposable
{
    private readonly Tensor?[] keys;
    private readonly Tensor?[] values;
    private Tensor? mask;

    public KvCache(int layers)
    {
        keys = new Tensor?[layers];
        values = new Tensor?[layers];
    }

    /// <summary>Positions held (including padding).</summary>
    public long Length => mask?.shape[1] ?? 0;

    /// <summary>The 0/1 mask [batch, Length] of real (1) and padding (0) positions seen so far.</summary>
    public Tensor? Mask => mask;

    /// <summary>Appends this step's keys and values [batch, kv_heads, new, head_dim]; returns all of them.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        var newKeys = keys[layer] is { } pk ? cat([pk, k], 2) : k.alias();
        var newValues = values[layer] is { } pv ? cat([pv, v], 2) : v.alias();
        Replace(ref keys[layer], newKeys);
        Replace(ref values[layer], newValues);
        return (newKeys, newValues);
    }

    /// <summary>Appends this step's mask [batch, new]; returns the mask over all positions.</summary>
    public Tensor AppendMask(Tensor stepMask)
    {
        var all = mask is null ? stepMask.alias() : cat([mask, stepMask], 1);
        Replace(ref mask, all);
        return all;
    }

    // The cache outlives the forward's dispose scope: detach the new tensor, free the old one.
    private static void Replace(ref Tensor? slot, Tensor value)
    {
        value.DetachFromDisposeScope();
        slot?.Dispose();
        slot = value;
    }

    public void Dispose()
    {
        for (int i = 0; i < keys.Length; i++) { keys[i]?.Dispose(); keys[i] = null; values[i]?.Dispose(); values[i] = null; }
        mask?.Dispose();
        mask = null;
    }
}
