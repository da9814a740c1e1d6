using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Rotary position embedding in Hugging Face's "rotate half" layout: dimension i is paired with i + r/2 among the
/// first r = rotary dimensions (all of the head unless <c>partial_rotary_factor</c> says otherwise). Frequencies
/// follow <see cref="RopeScaling"/>; angles are computed in float32 from integer positions, as transformers does.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly int rotaryDim, maxPositions;
    private readonly double theta;
    private readonly RopeScaling scaling;
    private readonly (float[] Inverse, float Factor)? fixedFrequencies; // when they do not depend on the length

    public RotaryEmbedding(int rotaryDim, double theta, RopeScaling? scaling = null, int maxPositions = 2048)
    {
        this.rotaryDim = rotaryDim;
        this.theta = theta;
        this.scaling = scaling ?? RopeScaling.None;
        this.maxPositions = maxPositions;
        if (!this.scaling.DependsOnLength) fixedFrequencies = Compute(1);
    }

    /// <summary>The inverse frequencies (rounded to float32) for a forward whose longest position is length − 1.</summary>
    public float[] InverseFrequencies(long length = 1) => Frequencies(length).Inverse;

    /// <summary>The factor that multiplies cos and sin (yarn and longrope; 1 otherwise).</summary>
    public float AttentionFactor(long length = 1) => Frequencies(length).Factor;

    (float[] Inverse, float Factor) Frequencies(long length) => fixedFrequencies ?? Compute(length);

    (float[] Inverse, float Factor) Compute(long length)
    {
        var (inv, att) = scaling.Frequencies(rotaryDim, theta, maxPositions, length);
        return (inv.Select(x => (float)x).ToArray(), (float)att);
    }

    /// <summary>cos and sin of shape [batch, 1, positions, rotary_dim] for positions [batch, positions].</summary>
    public (Tensor Cos, Tensor Sin) Angles(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        // dynamic and longrope depend on the longest position of the whole batch, as transformers' forward does.
        long length = scaling.DependsOnLength ? positions.max().item<long>() + 1 : 1;
        var (inverse, factor) = Frequencies(length);
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1) * tensor(inverse, device: positions.device); // [B, T, r/2]
        var emb = cat([freqs, freqs], -1).unsqueeze(1);                                  // [B, 1, T, r]
        Tensor cos = emb.cos(), sin = emb.sin();
        if (factor != 1) { cos = Scalars.Mul(cos, factor); sin = Scalars.Mul(sin, factor); }
        return (cos.to(dtype).MoveToOuterDisposeScope(), sin.to(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// x·cos + rotate_half(x)·sin on the first cos.shape[-1] dimensions of x [batch, heads, positions, head_dim];
    /// the remaining dimensions pass through (partial rotary).
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long r = cos.shape[^1], half = r / 2;
        var rot = r == x.shape[^1] ? x : x.narrow(-1, 0, r);
        var rotated = cat([-rot.narrow(-1, half, half), rot.narrow(-1, 0, half)], -1);
        var y = Scalars.Plus(rot * cos, rotated * sin);
        if (r != x.shape[^1]) y = cat([y, x.narrow(-1, r, x.shape[^1] - r)], -1);
        return y.MoveToOuterDisposeScope();
    }
}
