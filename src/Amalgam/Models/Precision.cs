using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// The one precision policy: weights stay in their stored dtype (float16 is widened to float32, since CPU kernels
/// for half are slow and inexact); norms, softmax and logits are computed in float32.
/// </summary>
public static class Precision
{
    /// <summary>The dtype a model computes in, given the dtype its weights are stored in.</summary>
    public static ScalarType ComputeType(ScalarType stored) => stored switch
    {
        ScalarType.Float32 => ScalarType.Float32,
        ScalarType.BFloat16 => ScalarType.BFloat16,
        ScalarType.Float16 => ScalarType.Float32,
        ScalarType.Float64 => ScalarType.Float64,
        _ => throw new NotSupportedException($"weights of dtype {stored} cannot be computed with; expected a floating-point dtype"),
    };

    /// <summary>The dtype of reductions that must not lose precision (norms, softmax, logits).</summary>
    public const ScalarType Reduction = ScalarType.Float32;
}
