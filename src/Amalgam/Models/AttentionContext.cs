using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// What every layer's attention shares in one forward: rotary angles [batch, 1, new, head_dim], the additive
/// float32 mask [batch, 1, new, all] (0 where a query may attend, float32 min elsewhere) and the cache.
/// </summary>
public sealed record AttentionContext(Tensor Cos, Tensor Sin, Tensor Mask, KvCache? Cache);
