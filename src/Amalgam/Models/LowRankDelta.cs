using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// A low-rank weight update ΔW = Scale·B·A applied to one linear layer, kept factored: A is [rank, in],
/// B is [out, rank]. The tensors are owned by whoever created the delta (an adapter), not by the layer.
/// </summary>
public sealed record LowRankDelta(Tensor A, Tensor B, double Scale)
{
    public long Rank => A.shape[0];

    /// <summary>Scale·B·(A·x) for x of shape [..., in], computed in A's dtype and returned in <paramref name="dtype"/>.</summary>
    public Tensor Apply(Tensor x, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.linear(x.to(A.dtype), A);
        var y = nn.functional.linear(h, B) * Scale;
        return y.to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>The dense update Scale·B·A, in float32 unless asked otherwise.</summary>
    public Tensor Dense(ScalarType dtype = ScalarType.Float32)
    {
        using var scope = NewDisposeScope();
        return (B.to(dtype).matmul(A.to(dtype)) * Scale).MoveToOuterDisposeScope();
    }
}
