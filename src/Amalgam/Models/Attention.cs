using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Causal grouped-query self-attention with rotary embeddings, computed as transformers' eager path does:
/// scores in the model dtype, mask added and softmax taken in float32, then cast back.
/// </summary>
public sealed class Attention : nn.Module<Tensor, ForwardContext, Tensor>
{
    private readonly AdaptableLinear q_proj;
    private readonly AdaptableLinear k_proj;
    private readonly AdaptableLinear v_proj;
    private readonly AdaptableLinear o_proj;
    private readonly int heads, kvHeads, headDim, layer;

    public Attention(string name, DecoderConfig c, int layer, ScalarType dtype) : base(name)
    {
        heads = c.NumAttentionHeads;
        kvHeads = c.KeyValueHeads;
        headDim = c.HeadDim;
        this.layer = layer;
        q_proj = new AdaptableLinear(nameof(q_proj), c.HiddenSize, heads * headDim, c.QkvBias, dtype);
        k_proj = new AdaptableLinear(nameof(k_proj), c.HiddenSize, kvHeads * headDim, c.QkvBias, dtype);
        v_proj = new AdaptableLinear(nameof(v_proj), c.HiddenSize, kvHeads * headDim, c.QkvBias, dtype);
        o_proj = new AdaptableLinear(nameof(o_proj), heads * headDim, c.HiddenSize, c.OutputBias, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, ForwardContext ctx)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = q_proj.call(x, ctx).view(b, t, heads, headDim).transpose(1, 2);
        var k = k_proj.call(x, ctx).view(b, t, kvHeads, headDim).transpose(1, 2);
        var v = v_proj.call(x, ctx).view(b, t, kvHeads, headDim).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, ctx.Cos, ctx.Sin);
        k = RotaryEmbedding.Apply(k, ctx.Cos, ctx.Sin);
        if (ctx.Cache is { } cache) (k, v) = cache.Append(layer, k, v);
        if (heads != kvHeads)
        {
            k = k.repeat_interleave(heads / kvHeads, dim: 1);
            v = v.repeat_interleave(heads / kvHeads, dim: 1);
        }
        var scores = q.matmul(k.transpose(2, 3)) * (1.0 / Math.Sqrt(headDim));
        var probs = nn.functional.softmax(scores.to(Precision.Reduction) + ctx.Mask, -1).to(v.dtype);
        var context = probs.matmul(v).transpose(1, 2).reshape(b, t, heads * headDim);
        return o_proj.call(context, ctx).MoveToOuterDisposeScope();
    }
}
