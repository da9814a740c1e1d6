using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Where a batched forward gets each row's expert weights: called by every mixed layer with its module name and
/// its input x [batch, positions, in]; returns float32 [batch, K] (per example) or [batch, positions, K] (per token).
/// A router that looks at x (Arrow, per token and per module) and fixed per-example weights are both policies.
/// The policy travels in the forward's <see cref="ForwardContext"/>; nothing is set on the layers.
/// </summary>
public interface IMixingPolicy
{
    Tensor Weights(string module, Tensor x);

    /// <summary>
    /// Where layers keep what they derive from weights that stay fixed across forwards (a generation's steps):
    /// per-rank-row gathers and per-row compacted factors. Null when the weights may change from call to call.
    /// </summary>
    MixingCache? Cache => null;
}

/// <summary>
/// The same per-example (or per-token) weights for every module, converted to float32 once. Weights that take part
/// in autograd are passed through as they are and never cached (the graph must be fresh for every backward);
/// otherwise layers cache their derived forms here for the policy's lifetime. Dispose it when the generation or
/// scoring batch it served is done.
/// </summary>
public sealed class FixedMixing : IMixingPolicy, IDisposable
{
    private readonly Tensor weights;
    private readonly bool owned;
    private readonly MixingCache? cache;

    public FixedMixing(Tensor weights)
    {
        if (weights.requires_grad || weights.dtype == ScalarType.Float32)
            this.weights = weights;
        else
        {
            this.weights = weights.to(ScalarType.Float32).DetachFromDisposeScope();
            owned = true;
        }
        if (!weights.requires_grad) cache = new MixingCache();
    }

    public Tensor Weights(string module, Tensor x) => weights;

    public MixingCache? Cache => cache;

    public void Dispose()
    {
        cache?.Dispose();
        if (owned) weights.Dispose();
    }
}

/// <summary>Per-layer forms of fixed mixing weights, owned by the policy that holds them.</summary>
public sealed class MixingCache : IDisposable
{
    private readonly Dictionary<StackedFactors, (Tensor? Gathered, PerRowFactors? Compact, bool CompactBuilt)> layers = [];

    internal Tensor Gathered(StackedFactors layer, Func<Tensor> make)
    {
        var entry = layers.GetValueOrDefault(layer);
        if (entry.Gathered is { } g) return g;
        entry.Gathered = make().DetachFromDisposeScope();
        layers[layer] = entry;
        return entry.Gathered;
    }

    internal PerRowFactors? Compact(StackedFactors layer, Func<PerRowFactors?> make)
    {
        var entry = layers.GetValueOrDefault(layer);
        if (entry.CompactBuilt) return entry.Compact;
        entry.Compact = make();
        entry.CompactBuilt = true;
        layers[layer] = entry;
        return entry.Compact;
    }

    public void Dispose()
    {
        foreach (var (gathered, compact, _) in layers.Values)
        {
            gathered?.Dispose();
            compact?.Dispose();
        }
        layers.Clear();
    }
}
