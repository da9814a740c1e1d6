using static TorchSharp.torch;

namespace Amalgam.Merging.Lora;

/// <summary>
/// The best rank-k factorisation of a dense update (Eckart–Young): with ΔW = U·S·Vᵀ, B = U_k·S_k and A = V_kᵀ,
/// so B·A is the closest rank-k matrix in the Frobenius norm and the scale is 1. Ranks above min(out, in) are
/// padded with zero rows/columns so every module of an adapter has the declared r.
/// </summary>
public static class LowRankFactorization
{
    public static (Tensor A, Tensor B) Truncate(Tensor delta, int rank)
    {
        using var scope = NewDisposeScope();
        var (u, s, vh) = linalg.svd(delta, fullMatrices: false);
        long k = Math.Min(rank, s.shape[0]);
        var b = u.narrow(1, 0, k) * s.narrow(0, 0, k).unsqueeze(0);
        var a = vh.narrow(0, 0, k);
        if (k < rank)
        {
            a = cat([a, zeros(rank - k, a.shape[1], dtype: a.dtype)], 0);
            b = cat([b, zeros(b.shape[0], rank - k, dtype: b.dtype)], 1);
        }
        return (a.contiguous().MoveToOuterDisposeScope(), b.contiguous().MoveToOuterDisposeScope());
    }
}
