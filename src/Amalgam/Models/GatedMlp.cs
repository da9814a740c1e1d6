using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>The SwiGLU feed-forward block: down_proj(silu(gate_proj(x)) · up_proj(x)).</summary>
public sealed class GatedMlp : nn.Module<Tensor, ForwardContext, Tensor>
{
    private readonly AdaptableLinear gate_proj;
    private readonly AdaptableLinear up_proj;
    private readonly AdaptableLinear down_proj;

    public GatedMlp(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        gate_proj = new AdaptableLinear(nameof(gate_proj), c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        up_proj = new AdaptableLinear(nameof(up_proj), c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        down_proj = new AdaptableLinear(nameof(down_proj), c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, ForwardContext ctx)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.silu(gate_proj.call(x, ctx)) * up_proj.call(x, ctx);
        return down_proj.call(h, ctx).MoveToOuterDisposeScope();
    }
}
