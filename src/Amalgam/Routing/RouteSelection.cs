using static TorchSharp.torch;

namespace Amalgam.Routing;

/// <summary>Turns router probabilities [..., K] into the mixing weights actually used.</summary>
public static class RouteSelection
{
    /// <summary>
    /// Keeps the <paramref name="k"/> largest probabilities of every row and renormalises them to sum to 1; k ≥ K returns a copy of the probabilities (dense mixing). A new float32 tensor.
    /// </summary>
    public static Tensor TopK(Tensor probabilities, int k)
    {
        if (k <= 0) throw new ArgumentException($"k: must be positive, got {k}");
        if (probabilities.dim() < 1) throw new ArgumentException("probabilities must be [..., K]");
        using var scope = NewDisposeScope();
        var p = probabilities.to(ScalarType.Float32);
        if (k >= p.shape[^1]) return p.clone().MoveToOuterDisposeScope();
        var (values, indices) = p.topk(k, dim: -1, largest: true, sorted: true);
        var kept = zeros_like(p).scatter(-1, indices, values);
        return (kept / kept.sum(-1, keepdim: true)).MoveToOuterDisposeScope();
    }

    /// <summary>One-hot weights on each row's most probable expert (ties to the lower index): top-1 routing.</summary>
    public static Tensor Argmax(Tensor probabilities)
    {
        if (probabilities.dim() < 1) throw new ArgumentException("probabilities must be [..., K]");
        using var scope = NewDisposeScope();
        var p = probabilities.to(ScalarType.Float32);
        return zeros_like(p).scatter(-1, p.argmax(-1, keepdim: true), ones_like(p)).MoveToOuterDisposeScope();
    }
}
