using TorchSharp;
using Amalgam.Models;
using Amalgam.Mixing;
using static TorchSharp.torch;

namespace Amalgam.Routing;

/// <summary>
/// Arrow routing (Ostapenko et al. 2024; PEFT's ArrowLoraLinearLayer), per token and per module, training-free: for
/// module m and token x, logitₑ = |⟨x, vₑ⟩| with vₑ expert e's prototype for m (sign-free, since a singular vector's
/// sign is arbitrary); the top k logits among the experts adapting m are kept and softmax(logit / T) over them gives
/// the weights, zero elsewhere. As in PEFT, x is not normalised (the softmax is over raw projections).
/// Use it as the <see cref="Models.DecoderInput"/>'s mixing policy with an <see cref="ExpertLibrary"/> over the same experts,
/// in the same order, as the prototypes.
/// </summary>
public sealed class ArrowRouting : IMixingPolicy
{
    // Held for the process: a temporary Scalar can be freed by the GC while libtorch reads it (see Models/Scalars.cs).
    private static readonly TorchSharp.Scalar NegativeInfinity = float.NegativeInfinity.ToScalar();

    /// <summary>PEFT's Arrow default.</summary>
    public const int DefaultTopK = 3;
    public const double DefaultTemperature = 1.0;

    private readonly ArrowPrototypes prototypes;
    private readonly Dictionary<string, int> selected; // per module: min(k, experts adapting it), known once

    public ArrowRouting(ArrowPrototypes prototypes, int topK = DefaultTopK, double temperature = DefaultTemperature)
    {
        if (topK <= 0) throw new ArgumentException($"top_k: must be positive, got {topK}");
        if (!(temperature > 0) || double.IsInfinity(temperature)) throw new ArgumentException($"temperature: must be positive, got {temperature}");
        this.prototypes = prototypes;
        TopK = topK;
        Temperature = temperature;
        using var scope = NewDisposeScope();
        selected = prototypes.Modules.ToDictionary(m => m.Key, m => (int)Math.Min(topK, m.Value.Adapts.sum().item<long>()));
    }

    public int TopK { get; }
    public double Temperature { get; }

    /// <summary>x [b, t, in] → a new float32 tensor [b, t, K]: per token, min(k, experts adapting the module) non-zero weights summing to 1.</summary>
    public Tensor Weights(string module, Tensor x)
    {
        if (!prototypes.Modules.TryGetValue(module, out var p))
            throw new ArgumentException($"module '{module}': none of the Arrow experts adapts it");
        if (x.dim() != 3 || x.shape[2] != p.Vectors.shape[1])
            throw new ArgumentException($"module '{module}': x must be [batch, positions, {p.Vectors.shape[1]}], got [{string.Join(", ", x.shape)}]");
        using var scope = NewDisposeScope();
        var vectors = p.Vectors.to(x.device);
        var adapts = p.Adapts.to(x.device);
        int k = selected[module];
        var logits = x.to(ScalarType.Float32).matmul(vectors.T).abs().masked_fill(adapts.logical_not(), NegativeInfinity);
        var (values, indices) = logits.topk(k, dim: -1);
        var kept = full_like(logits, float.NegativeInfinity).scatter(-1, indices, values);
        return nn.functional.softmax(kept / Temperature, -1).MoveToOuterDisposeScope();
    }
}
