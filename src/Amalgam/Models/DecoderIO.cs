using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// One forward call: token ids [batch, new]; optional 0/1 attention mask [batch, new] marking padding (any side);
/// an optional cache holding earlier positions (updated in place); whether only the last position's logits are needed;
/// with an expert library installed, the policy giving each row its expert weights; and an optional observer of
/// each layer's input hidden states (layer index, [batch, new, hidden]; valid only during the call), which is what
/// transformers' <c>output_hidden_states</c> gives without its last, normed entry.
/// </summary>
public sealed record DecoderInput(Tensor InputIds, Tensor? AttentionMask = null, KvCache? Cache = null, bool LastPositionOnly = false,
    IMixingPolicy? Mixing = null, Action<int, Tensor>? LayerInputs = null);

/// <summary>Float32 logits [batch, positions, vocab] (positions = 1 when only the last was asked for).</summary>
public sealed record DecoderOutput(Tensor Logits);
