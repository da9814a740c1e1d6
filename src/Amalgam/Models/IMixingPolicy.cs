using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Where a batched forward gets each row's expert weights: called by every mixed layer with its module name and
/// its input x [batch, positions, in]; returns [batch, K] (per example) or [batch, positions, K] (per token).
/// A router that looks at x (Arrow, per token and per module) and fixed per-example weights are both policies.
/// A returned tensor is treated as immutable: layers cache what they derive from it (so fixed weights are gathered
/// once per generation); return a new tensor whenever the weights change, never overwrite one in place.
/// Mixing runs one forward at a time on a model (the policy is set on its layers for the forward's duration).
/// </summary>
public interface IMixingPolicy
{
    Tensor Weights(string module, Tensor x);
}

/// <summary>The same per-example (or per-token) weights for every module.</summary>
public sealed class FixedMixing(Tensor weights) : IMixingPolicy
{
    public Tensor Weights(string module, Tensor x) => weights;
}
