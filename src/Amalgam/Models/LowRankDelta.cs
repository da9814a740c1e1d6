using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// A low-rank weight update ΔW = Scale·B·A applied to one linear layer, kept factored: A is [rank, in],
/// B is [out, rank]. The tensors are owned by whoever created the delta (an adapter), not by the layer.
/// With a <see cref="Magnitude"/> it is a DoRA update (PEFT's semantics): the layer's weight becomes
/// m ⊙ (W + s·B·A) / ‖W + s·B·A‖, the norm taken per output row, so the update depends on W itself.
/// </summary>
public sealed record LowRankDelta(Tensor A, Tensor B, double Scale)
{
    public long Rank => A.shape[0];

    /// <summary>DoRA's magnitude vector m [out] (PEFT's <c>lora_magnitude_vector</c>); null for plain LoRA.</summary>
    public Tensor? Magnitude { get; init; }

    public bool IsDora => Magnitude is not null;

    /// <summary>Scale·B·(A·x) for x of shape [..., in], computed in A's dtype and returned in <paramref name="dtype"/>.</summary>
    public Tensor Apply(Tensor x, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.linear(x.to(A.dtype), A);
        var y = Scalars.Mul(nn.functional.linear(h, B), Scale);
        return y.to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The dense update Scale·B·A, in float32 unless asked otherwise. A DoRA update is not of this form (it rescales
    /// W's rows): it is refused here, so that every consumer that reasons about ΔW = s·B·A refuses DoRA experts.
    /// </summary>
    public Tensor Dense(ScalarType dtype = ScalarType.Float32)
    {
        if (IsDora) throw new NotSupportedException("lora_magnitude_vector: a DoRA update rescales the base weight's rows, so it has no factored form s·B·A; fold it with DoraWeight");
        return Product(dtype);
    }

    Tensor Product(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        return Scalars.Mul(B.to(dtype).matmul(A.to(dtype)), Scale).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// DoRA's row factor g = m / ‖W + s·B·A‖ (the L2 norm of each output row; PEFT's "column-wise" norm of the
    /// [out, in] weight), in float32 on W's device. PEFT detaches the norm; here nothing needs gradients.
    /// </summary>
    public Tensor DoraFactor(Tensor weight)
    {
        using var scope = NewDisposeScope();
        return Decompose(weight, ScalarType.Float32).Factor.MoveToOuterDisposeScope();
    }

    /// <summary>The folded DoRA weight W' = g ⊙ (W + s·B·A), computed in float32 (float64 if asked) and returned in <paramref name="dtype"/>.</summary>
    public Tensor DoraWeight(Tensor weight, ScalarType dtype = ScalarType.Float32)
    {
        using var scope = NewDisposeScope();
        var (merged, factor) = Decompose(weight, dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32);
        return (merged * factor.unsqueeze(1)).to(dtype).MoveToOuterDisposeScope();
    }

    (Tensor Merged, Tensor Factor) Decompose(Tensor weight, ScalarType compute)
    {
        if (Magnitude is not { } m) throw new InvalidOperationException("not a DoRA update");
        var merged = weight.to(compute) + Product(compute).to(weight.device);
        return (merged, m.to(compute, weight.device) / linalg.vector_norm(merged, 2, [1L], false));
    }

    /// <summary>
    /// PEFT's eval-time DoRA output added to the base result: (g − 1)·(W·x) + g·s·B·A·x, where W·x excludes the bias
    /// (the bias is not rescaled). <paramref name="factor"/> is <see cref="DoraFactor"/> of the layer's weight.
    /// </summary>
    public Tensor ApplyDora(Tensor x, Tensor baseWithoutBias, Tensor factor, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var g = factor.to(A.dtype);
        var y = Scalars.Plus(Scalars.Sub(g, 1) * baseWithoutBias.to(A.dtype), g * Apply(x, A.dtype));
        return y.to(dtype).MoveToOuterDisposeScope();
    }
}
