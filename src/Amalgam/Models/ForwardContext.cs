using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// What every module of one forward shares, built once by <see cref="CausalLM"/> and passed down through the stack,
/// the layers and attention to each <see cref="AdaptableLinear"/>: rotary angles [batch, 1, new, rotary_dim], the
/// additive float32 mask [batch, 1, new, all] (0 where a query may attend, float32 min elsewhere), the cache (updated
/// in place) and the mixing policy that gives each row its expert weights (null: no per-row mixture). Nothing about
/// a forward is stored on the modules themselves. Sliding-window layers read <see cref="SlidingMask"/> (the same
/// mask, also hiding keys a window or more behind the query); Gemma 3's sliding layers rotate with
/// <see cref="LocalCos"/>/<see cref="LocalSin"/>.
/// </summary>
public sealed record ForwardContext(Tensor Cos, Tensor Sin, Tensor Mask, KvCache? Cache = null, IMixingPolicy? Mixing = null)
{
    public Tensor? SlidingMask { get; init; }
    /// <summary>Run only the first this many layers and return the residual stream, unnormed (router features); null: all, then the final norm.</summary>
    public int? Layers { get; init; }
    public Tensor? LocalCos { get; init; }
    public Tensor? LocalSin { get; init; }
    /// <summary>Each new token's position [batch, new] (GPT-2's learned position embeddings read it).</summary>
    public Tensor? Positions { get; init; }
    /// <summary>Called with each layer's index and input (see <see cref="DecoderInput.LayerInputs"/>).</summary>
    public Action<int, Tensor>? LayerInputs { get; init; }
}
