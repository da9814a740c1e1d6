using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Rotary position embedding in Hugging Face's "rotate half" layout: dimension i is paired with i + d/2.
/// Angles are computed in float32 from integer positions, as transformers does.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly double theta;
    private readonly int headDim;

    public RotaryEmbedding(int headDim, double theta)
    {
        this.headDim = headDim;
        this.theta = theta;
    }

    /// <summary>1 / theta^(2i/d) for i &lt; d/2, rounded to float32.</summary>
    public float[] InverseFrequencies() =>
        Enumerable.Range(0, headDim / 2).Select(i => (float)(1.0 / Math.Pow(theta, 2.0 * i / headDim))).ToArray();

    /// <summary>cos and sin of shape [batch, 1, positions, head_dim] for positions [batch, positions].</summary>
    public (Tensor Cos, Tensor Sin) Angles(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var invFreq = tensor(InverseFrequencies());
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1) * invFreq;   // [B, T, d/2]
        var emb = cat([freqs, freqs], -1).unsqueeze(1);                         // [B, 1, T, d]
        return (emb.cos().to(dtype).MoveToOuterDisposeScope(), emb.sin().to(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>x·cos + rotate_half(x)·sin for x of shape [batch, heads, positions, head_dim].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.shape[^1] / 2;
        var rotated = cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }
}
