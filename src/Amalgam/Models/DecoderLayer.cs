using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>A pre-norm transformer block: x + attention(norm(x)), then + mlp(norm(·)).</summary>
public sealed class DecoderLayer : nn.Module<Tensor, ForwardContext, Tensor>
{
    private readonly Attention self_attn;
    private readonly GatedMlp mlp;
    private readonly RmsNorm input_layernorm;
    private readonly RmsNorm post_attention_layernorm;

    public DecoderLayer(string name, DecoderConfig c, int layer, ScalarType dtype) : base(name)
    {
        self_attn = new Attention(nameof(self_attn), c, layer, dtype);
        mlp = new GatedMlp(nameof(mlp), c, dtype);
        input_layernorm = new RmsNorm(nameof(input_layernorm), c.HiddenSize, c.RmsNormEps, dtype);
        post_attention_layernorm = new RmsNorm(nameof(post_attention_layernorm), c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, ForwardContext ctx)
    {
        using var scope = NewDisposeScope();
        var h = x + self_attn.call(input_layernorm.call(x), ctx);
        return (h + mlp.call(post_attention_layernorm.call(h), ctx)).MoveToOuterDisposeScope();
    }
}
