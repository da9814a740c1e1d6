using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// A pre-norm transformer block: x + attention(norm(x)), then + mlp(norm(·)) (GPT-2: ln_1 and ln_2, LayerNorms). Gemma also norms each sublayer's
/// output before the residual (post_attention_layernorm, then pre/post_feedforward_layernorm around the MLP).
/// </summary>
public sealed class DecoderLayer : nn.Module<Tensor, ForwardContext, Tensor>
{
    private readonly Attention self_attn;
    /// <summary>The dense MLP, or Qwen2-MoE's sparse block (also named <c>mlp</c> in its checkpoints).</summary>
    private readonly nn.Module<Tensor, ForwardContext, Tensor>? mlp;
    private readonly SparseMoeBlock? block_sparse_moe;
    private readonly nn.Module<Tensor, Tensor> input_layernorm;
    private readonly nn.Module<Tensor, Tensor> post_attention_layernorm;
    private readonly RmsNorm? pre_feedforward_layernorm;
    private readonly RmsNorm? post_feedforward_layernorm;

    public DecoderLayer(string name, DecoderConfig c, int layer, ScalarType dtype) : base(name)
    {
        self_attn = new Attention(nameof(self_attn), c, layer, dtype);
        if (c.IsMixtral) block_sparse_moe = new SparseMoeBlock(nameof(block_sparse_moe), c, dtype);
        else if (c.IsQwen2Moe && c.IsSparseLayer(layer)) mlp = new Qwen2MoeSparseBlock(nameof(mlp), c, dtype);
        else mlp = new GatedMlp(nameof(mlp), c, dtype);
        input_layernorm = LayerNorm.For(nameof(input_layernorm), c, c.HiddenSize, dtype);
        post_attention_layernorm = LayerNorm.For(nameof(post_attention_layernorm), c, c.HiddenSize, dtype);
        if (c.SandwichNorms)
        {
            pre_feedforward_layernorm = new RmsNorm(nameof(pre_feedforward_layernorm), c.HiddenSize, c.RmsNormEps, dtype, c.OffsetNorms);
            post_feedforward_layernorm = new RmsNorm(nameof(post_feedforward_layernorm), c.HiddenSize, c.RmsNormEps, dtype, c.OffsetNorms);
        }
        RegisterComponents();
    }

    Tensor FeedForward(Tensor x, ForwardContext ctx) => mlp is not null ? mlp.call(x, ctx) : block_sparse_moe!.call(x, ctx);

    public override Tensor forward(Tensor x, ForwardContext ctx)
    {
        using var scope = NewDisposeScope();
        var attn = self_attn.call(input_layernorm.call(x), ctx);
        if (pre_feedforward_layernorm is null)
        {
            var h = Scalars.Plus(x, attn);
            return Scalars.Plus(h, FeedForward(post_attention_layernorm.call(h), ctx)).MoveToOuterDisposeScope();
        }
        var g = Scalars.Plus(x, post_attention_layernorm.call(attn));
        return Scalars.Plus(g, post_feedforward_layernorm!.call(FeedForward(pre_feedforward_layernorm.call(g), ctx))).MoveToOuterDisposeScope();
    }
}
