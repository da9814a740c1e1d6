using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// One forward call: token ids [batch, new]; optional 0/1 attention mask [batch, new] marking padding (any side);
/// an optional cache holding earlier positions (updated in place); whether only the last position's logits are needed;
/// and, with an expert library installed, the policy giving each row its expert weights.
/// </summary>
public sealed record DecoderInput(Tensor InputIds, Tensor? AttentionMask = null, KvCache? Cache = null, bool LastPositionOnly = false,
    IMixingPolicy? Mixing = null);

/// <summary>Float32 logits [batch, positions, vocab] (positions = 1 when only the last was asked for).</summary>
public sealed record DecoderOutput(Tensor Logits);
