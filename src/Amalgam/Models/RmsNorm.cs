using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Root-mean-square norm as transformers computes it. Llama/Qwen/Phi: normalise in float32, cast back, then
/// scale by w. Gemma (<paramref name="offset"/>): scale by (1 + w) in float32, then cast back.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly bool offset;
    // Scalars held by the module, not made per call: TorchSharp passes a temporary Scalar's handle to native code
    // without keeping the object alive, so under GC pressure (the server) its finalizer can free it mid-call
    // (seen once as "INTERNAL ASSERT FAILED at c10/core/Scalar.h" from pow(2) here).
    private readonly Scalar eps, one = 1.0.ToScalar();

    public RmsNorm(string name, long size, double eps, ScalarType dtype, bool offset = false) : base(name)
    {
        weight = new Parameter(empty(size, dtype), requires_grad: false);
        this.eps = eps.ToScalar();
        this.offset = offset;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to(Precision.Reduction);
        var normed = x32 * (x32.square().mean([-1], keepdim: true) + eps).rsqrt();
        var y = offset ? (normed * (weight.to(Precision.Reduction) + one)).to(x.dtype) : weight * normed.to(x.dtype);
        return y.MoveToOuterDisposeScope();
    }
}
