using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Causal grouped-query self-attention with rotary embeddings (none for GPT-2, whose positions are learned), computed as transformers' eager path does:
/// scores in the model dtype (optionally soft-capped), mask added and softmax taken in float32, then cast back.
/// Phi-3 projects q, k and v with one fused <c>qkv_proj</c>; Qwen3 and Gemma 3 norm each head of q and k first.
/// </summary>
public sealed class Attention : nn.Module<Tensor, ForwardContext, Tensor>
{
    private readonly AdaptableLinear? q_proj;
    private readonly AdaptableLinear? k_proj;
    private readonly AdaptableLinear? v_proj;
    private readonly AdaptableLinear? qkv_proj;
    private readonly AdaptableLinear o_proj;
    private readonly RmsNorm? q_norm;
    private readonly RmsNorm? k_norm;
    private readonly int heads, kvHeads, headDim, layer;
    private readonly double scale;
    private readonly double? softcap;
    private readonly bool sliding, localRope, rotary;

    public Attention(string name, DecoderConfig c, int layer, ScalarType dtype) : base(name)
    {
        heads = c.NumAttentionHeads;
        kvHeads = c.KeyValueHeads;
        headDim = c.HeadDim;
        this.layer = layer;
        scale = c.AttentionScale;
        softcap = c.AttentionSoftcap;
        sliding = c.LayerWindow(layer) is not null;
        localRope = c.UsesLocalRope(layer);
        rotary = c.Rotary;
        if (c.FusedProjections)
            qkv_proj = new AdaptableLinear(nameof(qkv_proj), c.HiddenSize, (heads + 2L * kvHeads) * headDim, c.QkvBias, dtype);
        else
        {
            q_proj = new AdaptableLinear(nameof(q_proj), c.HiddenSize, heads * headDim, c.QkvBias, dtype);
            k_proj = new AdaptableLinear(nameof(k_proj), c.HiddenSize, kvHeads * headDim, c.QkvBias, dtype);
            v_proj = new AdaptableLinear(nameof(v_proj), c.HiddenSize, kvHeads * headDim, c.QkvBias, dtype);
        }
        o_proj = new AdaptableLinear(nameof(o_proj), heads * headDim, c.HiddenSize, c.OutputBias, dtype);
        if (c.QkNorm)
        {
            q_norm = new RmsNorm(nameof(q_norm), headDim, c.RmsNormEps, dtype, c.OffsetNorms);
            k_norm = new RmsNorm(nameof(k_norm), headDim, c.RmsNormEps, dtype, c.OffsetNorms);
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, ForwardContext ctx)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        Tensor q, k, v;
        if (qkv_proj is not null)
        {
            var parts = qkv_proj.call(x, ctx).split([heads * headDim, kvHeads * headDim, kvHeads * headDim], -1);
            (q, k, v) = (parts[0], parts[1], parts[2]);
        }
        else (q, k, v) = (q_proj!.call(x, ctx), k_proj!.call(x, ctx), v_proj!.call(x, ctx));
        q = q.view(b, t, heads, headDim);
        k = k.view(b, t, kvHeads, headDim);
        if (q_norm is not null) { q = q_norm.call(q); k = k_norm!.call(k); }
        q = q.transpose(1, 2);
        k = k.transpose(1, 2);
        v = v.view(b, t, kvHeads, headDim).transpose(1, 2);
        if (rotary)
        {
            var (cos, sin) = localRope ? (ctx.LocalCos!, ctx.LocalSin!) : (ctx.Cos, ctx.Sin);
            q = RotaryEmbedding.Apply(q, cos, sin);
            k = RotaryEmbedding.Apply(k, cos, sin);
        }
        if (ctx.Cache is { } cache) (k, v) = cache.Append(layer, k, v);
        if (heads != kvHeads)
        {
            k = k.repeat_interleave(heads / kvHeads, dim: 1);
            v = v.repeat_interleave(heads / kvHeads, dim: 1);
        }
        var scores = Scalars.Mul(q.matmul(k.transpose(2, 3)), scale);
        if (softcap is double cap) scores = Scalars.SoftCap(scores, cap);
        var mask = sliding ? ctx.SlidingMask! : ctx.Mask;
        var probs = nn.functional.softmax(Scalars.Plus(scores.to(Precision.Reduction), mask), -1).to(v.dtype);
        var context = probs.matmul(v).transpose(1, 2).reshape(b, t, heads * headDim);
        return o_proj.call(context, ctx).MoveToOuterDisposeScope();
    }
}
