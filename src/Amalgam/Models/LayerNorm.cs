using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>LayerNorm with weight and bias (GPT-2's ln_1, ln_2, ln_f), as torch.nn.LayerNorm over the last dimension.</summary>
public sealed class LayerNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly long size;
    private readonly double eps;

    public LayerNorm(string name, long size, double eps, ScalarType dtype) : base(name)
    {
        weight = new Parameter(empty(size, dtype), requires_grad: false);
        bias = new Parameter(empty(size, dtype), requires_grad: false);
        this.size = size;
        this.eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.layer_norm(x, [size], weight, bias, eps);

    /// <summary>The family's norm: LayerNorm for GPT-2, RMSNorm otherwise.</summary>
    internal static nn.Module<Tensor, Tensor> For(string name, DecoderConfig c, long size, ScalarType dtype) =>
        c.LayerNorms ? new LayerNorm(name, size, c.RmsNormEps, dtype) : new RmsNorm(name, size, c.RmsNormEps, dtype, c.OffsetNorms);
}
