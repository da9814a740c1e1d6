using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// The gated feed-forward block: down_proj(act(gate) · up) with SiLU (SwiGLU) or tanh-GELU (Gemma's GeGLU).
/// Phi-3 stores gate and up as one <c>gate_up_proj</c> whose first half is the gate. GPT-2's MLP has no gate:
/// down_proj(gelu_new(up_proj(x))), its c_fc and c_proj.
/// </summary>
public sealed class GatedMlp : nn.Module<Tensor, ForwardContext, Tensor>
{
    private readonly AdaptableLinear? gate_proj;
    private readonly AdaptableLinear? up_proj;
    private readonly AdaptableLinear? gate_up_proj;
    private readonly AdaptableLinear down_proj;
    private readonly Activation activation;

    /// <param name="intermediate">the width, when not <c>intermediate_size</c> (a Qwen2-MoE expert or shared expert)</param>
    public GatedMlp(string name, DecoderConfig c, ScalarType dtype, int? intermediate = null) : base(name)
    {
        int ff = intermediate ?? c.IntermediateSize;
        bool bias = c.FeedForwardBias;
        if (c.FusedProjections)
            gate_up_proj = new AdaptableLinear(nameof(gate_up_proj), c.HiddenSize, 2L * ff, bias, dtype);
        else
        {
            if (c.GatedFeedForward) gate_proj = new AdaptableLinear(nameof(gate_proj), c.HiddenSize, ff, bias, dtype);
            up_proj = new AdaptableLinear(nameof(up_proj), c.HiddenSize, ff, bias, dtype);
        }
        down_proj = new AdaptableLinear(nameof(down_proj), ff, c.HiddenSize, bias, dtype);
        activation = c.Activation;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, ForwardContext ctx)
    {
        using var scope = NewDisposeScope();
        Tensor gate, up;
        if (gate_proj is null && gate_up_proj is null) return down_proj.call(Activate(up_proj!.call(x, ctx)), ctx).MoveToOuterDisposeScope();
        if (gate_up_proj is not null)
        {
            var both = gate_up_proj.call(x, ctx).chunk(2, -1);
            (gate, up) = (both[0], both[1]);
        }
        else (gate, up) = (gate_proj!.call(x, ctx), up_proj!.call(x, ctx));
        return down_proj.call(Activate(gate) * up, ctx).MoveToOuterDisposeScope();
    }

    Tensor Activate(Tensor x) => activation == Activation.Silu ? nn.functional.silu(x) : nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh);
}
