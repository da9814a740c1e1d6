using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Tensor-by-number arithmetic that keeps its Scalar alive. TorchSharp turns a double into a temporary Scalar and
/// hands its native handle to libtorch without keeping the object reachable, so under GC pressure its finalizer can
/// free it mid-call (seen as "toFloat" and "Unknown scalar type" internal asserts in forwards and as a failed
/// RmsNorm in the server). The <c>using</c> holds each Scalar until the call has returned. Used on every per-forward
/// path; one-off setup code may use the operators.
/// </summary>
internal static class Scalars
{
    public static Tensor Mul(Tensor t, double s) { using var x = s.ToScalar(); return t.mul(x); }
    public static Tensor Div(Tensor t, double s) { using var x = s.ToScalar(); return t.div(x); }
    public static Tensor Add(Tensor t, double s) { using var x = s.ToScalar(); return t.add(x); }
    public static Tensor Sub(Tensor t, double s) { using var x = s.ToScalar(); return t.sub(x); }
    /// <summary>t + s and t − s with an integer Scalar, so that an integer tensor (positions, masks) stays integer.</summary>
    public static Tensor AddInteger(Tensor t, long s) { using var x = s.ToScalar(); return t.add(x); }
    public static Tensor SubInteger(Tensor t, long s) { using var x = s.ToScalar(); return t.sub(x); }

    // Tensor + tensor passes an alpha Scalar too (TorchSharp's add(other) makes a temporary 1): this one lives for
    // the process, so no finalizer can free it mid-call.
    static readonly Scalar One = 1.ToScalar();

    /// <summary>a + b (tensors) with a process-wide alpha, for per-forward paths.</summary>
    public static Tensor Plus(Tensor a, Tensor b) => a.add(b, One);
    // (Tensor − tensor is safe as it is: TorchSharp's sub(Tensor) passes no alpha.)

    /// <summary>cap·tanh(t / cap): Gemma's attention and final-logit soft-capping.</summary>
    public static Tensor SoftCap(Tensor t, double cap) => Mul(Div(t, cap).tanh(), cap);
}
