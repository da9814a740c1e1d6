using System.Text.Json;
using System.Text.Json.Serialization;

namespace Amalgam.Models;

/// <summary>The feed-forward gate's activation: SiLU (SwiGLU) or GELU with the tanh approximation (GeGLU).</summary>
public enum Activation { Silu, GeluTanh }

/// <summary>
/// What differs between the families, derived from config.json the way each transformers config class does
/// (including its defaults for absent fields), so that one decoder is configured rather than copied per family.
/// </summary>
public sealed partial class DecoderConfig
{
    const string Sliding = "sliding_attention", Full = "full_attention";

    string? Arch => Architectures?.FirstOrDefault(SupportedArchitectures.ContainsKey);
    [JsonIgnore] public bool IsGemma => Arch is "Gemma2ForCausalLM" or "Gemma3ForCausalLM";
    bool IsQwen => Arch is "Qwen2ForCausalLM" or "Qwen3ForCausalLM" or "Qwen2MoeForCausalLM";
    bool IsPhi3 => Arch == "Phi3ForCausalLM";
    /// <summary>Mixtral: Mistral's attention with a sparse mixture of SwiGLU experts in place of the MLP.</summary>
    [JsonIgnore] public bool IsMixtral => Arch == "MixtralForCausalLM";
    /// <summary>Qwen2-MoE: Qwen2's attention; sparse layers hold routed experts plus a shared expert behind a sigmoid gate.</summary>
    [JsonIgnore] public bool IsQwen2Moe => Arch == "Qwen2MoeForCausalLM";
    /// <summary>
    /// GPT-2: learned absolute positions instead of rotary angles, LayerNorm with bias instead of RMSNorm, q/k/v and
    /// o with biases, an ungated MLP (c_fc → gelu_new → c_proj) with biases, tied embeddings. Its checkpoint names
    /// (h.N.attn.c_attn, Conv1D weights stored [in, out]) are mapped onto the decoder's by <see cref="Gpt2Checkpoint"/>.
    /// </summary>
    [JsonIgnore] public bool IsGpt2 => Arch == "GPT2LMHeadModel";
    [JsonIgnore] public bool Rotary => !IsGpt2;
    [JsonIgnore] public bool LayerNorms => IsGpt2;
    [JsonIgnore] public bool LearnedPositions => IsGpt2;
    [JsonIgnore] public bool GatedFeedForward => !IsGpt2;
    [JsonIgnore] public bool FeedForwardBias => MlpBias || IsGpt2;

    /// <summary>GPT2Config's fields (and its defaults for absent ones) in the common ones; the norm epsilon is layer_norm_epsilon.</summary>
    void UseGpt2Names()
    {
        if (HiddenSize == 0) HiddenSize = NEmbd ?? 768;
        if (NumHiddenLayers == 0) NumHiddenLayers = NLayer ?? 12;
        if (NumAttentionHeads == 0) NumAttentionHeads = NHead ?? 12;
        if (IntermediateSize == 0) IntermediateSize = NInner ?? 4 * HiddenSize;
        if (VocabSize == 0) VocabSize = 50257;
        MaxPositionEmbeddings = NPositions ?? 1024;
        RmsNormEps = LayerNormEpsilon ?? 1e-5;
    }

    long Gpt2ParameterCount
    {
        get
        {
            checked
            {
                long h = HiddenSize, i = IntermediateSize;
                long layer = 4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h; // q, k, v, o with biases; c_fc, c_proj with biases; two LayerNorms
                return (long)VocabSize * h + (long)MaxPositionEmbeddings * h + NumHiddenLayers * layer + 2 * h;
            }
        }
    }

    /// <summary>Whether layer <paramref name="layer"/> has a sparse MoE block: every Mixtral layer; for Qwen2-MoE, transformers' rule (not in mlp_only_layers, num_experts &gt; 0, (layer + 1) % decoder_sparse_step == 0).</summary>
    public bool IsSparseLayer(int layer) => IsMixtral || IsQwen2Moe && !(MlpOnlyLayers?.Contains(layer) ?? false) && NumExperts > 0 && (layer + 1) % DecoderSparseStep == 0;

    /// <summary>head_dim, else the config class's default: 256 for Gemma, 128 for Qwen3, hidden / heads otherwise.</summary>
    [JsonIgnore]
    public int HeadDim => HeadDimField ?? Arch switch
    {
        "Gemma2ForCausalLM" or "Gemma3ForCausalLM" => 256,
        "Qwen3ForCausalLM" => 128,
        _ => HiddenSize / NumAttentionHeads,
    };

    /// <summary>Qwen2 always has q/k/v biases (and none on o_proj); Phi-3 and Mixtral have none; the others follow <c>attention_bias</c>.</summary>
    [JsonIgnore] public bool QkvBias => Arch is "Qwen2ForCausalLM" or "Qwen2MoeForCausalLM" or "GPT2LMHeadModel" || (!IsPhi3 && !IsMixtral && AttentionBias);
    [JsonIgnore] public bool OutputBias => IsGpt2 || Arch is not ("Qwen2ForCausalLM" or "Qwen2MoeForCausalLM") && !IsPhi3 && !IsMixtral && AttentionBias;

    /// <summary>Phi-3: one <c>qkv_proj</c> and one <c>gate_up_proj</c> instead of q/k/v and gate/up.</summary>
    [JsonIgnore] public bool FusedProjections => IsPhi3;
    /// <summary>Qwen3 and Gemma 3: RMSNorm over each head of q and k before the rotation.</summary>
    [JsonIgnore] public bool QkNorm => Arch is "Qwen3ForCausalLM" or "Gemma3ForCausalLM";
    /// <summary>Gemma: norms scale by (1 + w) in float32, and attention and MLP outputs are normed before the residual.</summary>
    [JsonIgnore] public bool OffsetNorms => IsGemma;
    [JsonIgnore] public bool SandwichNorms => IsGemma;
    /// <summary>Gemma multiplies the embeddings by √hidden (rounded to the model dtype).</summary>
    [JsonIgnore] public double? EmbeddingScale => IsGemma ? Math.Sqrt(HiddenSize) : null;

    string ActivationField => IsGpt2 ? "activation_function" : IsGemma && HiddenActivation is not null ? "hidden_activation" : "hidden_act";
    string ActivationName => IsGpt2 ? ActivationFunction ?? "gelu_new" : IsGemma ? HiddenActivation ?? HiddenAct ?? "gelu_pytorch_tanh" : HiddenAct ?? "silu";
    [JsonIgnore] public Activation Activation => ActivationName == "silu" ? Activation.Silu : Activation.GeluTanh;

    /// <summary>The factor on q·kᵀ: query_pre_attn_scalar^-½ for Gemma (default 256), head_dim^-½ otherwise.</summary>
    [JsonIgnore] public double AttentionScale => 1.0 / Math.Sqrt(IsGemma ? QueryPreAttnScalar ?? 256 : HeadDim);

    /// <summary>cap·tanh(scores / cap) before the mask; Gemma 2 defaults to 50 when the field is absent.</summary>
    [JsonIgnore] public double? AttentionSoftcap => Cap(AttnLogitSoftcapping, Arch == "Gemma2ForCausalLM" ? 50.0 : null);
    /// <summary>cap·tanh(logits / cap); Gemma 2 defaults to 30 when the field is absent.</summary>
    [JsonIgnore] public double? FinalSoftcap => Cap(FinalLogitSoftcapping, Arch == "Gemma2ForCausalLM" ? 30.0 : null);

    static double? Cap(JsonElement? field, double? absent) => field switch
    {
        null => absent,
        { ValueKind: JsonValueKind.Null } => null,
        { ValueKind: JsonValueKind.Number } n => n.GetDouble(),
        _ => double.NaN,
    };

    /// <summary>Dimensions per head that rotate: head_dim · partial_rotary_factor (Phi-3; 1 elsewhere).</summary>
    [JsonIgnore] public int RotaryDim => (int)(HeadDim * (PartialRotaryFactor ?? 1.0));

    /// <summary>The parsed rope_scaling of the global layers (set by <see cref="Validate"/>).</summary>
    [JsonIgnore] public RopeScaling Scaling { get; private set; } = Models.RopeScaling.None;

    /// <summary>Gemma 3's sliding layers rotate with their own base and without scaling.</summary>
    [JsonIgnore] public bool HasLocalRope => Arch == "Gemma3ForCausalLM";
    [JsonIgnore] public double LocalRopeTheta => RopeLocalBaseFreq ?? 10000.0;
    public bool UsesLocalRope(int layer) => HasLocalRope && LayerWindow(layer) is not null;

    /// <summary>The window of the sliding layers (a query sees itself and window − 1 earlier positions).</summary>
    int? WindowSize => IsGemma ? SlidingWindow ?? 4096 : IsQwen && UseSlidingWindow != true ? null : SlidingWindow;

    /// <summary>
    /// Each layer's kind as transformers derives it when config.json has no <c>layer_types</c>: Gemma 2 alternates
    /// (even layers slide), Gemma 3 slides except every <c>sliding_window_pattern</c>-th layer, Qwen slides from
    /// layer <c>max_window_layers</c> on (with <c>use_sliding_window</c>), Mistral and Phi-3 slide everywhere when a
    /// window is set, Llama never.
    /// </summary>
    [JsonIgnore]
    public IReadOnlyList<string> ResolvedLayerTypes => Enumerable.Range(0, NumHiddenLayers).Select(LayerType).ToList();

    // One layer's kind, O(1): per-layer callers must not rebuild the whole list (a config with many layers made
    // validation quadratic in the layer count).
    string LayerType(int i) =>
        Arch == "LlamaForCausalLM" ? Full
        : LayerTypes is { } given ? given[i]
        : Arch switch
        {
            "Gemma2ForCausalLM" => i % 2 == 0 ? Sliding : Full,
            "Gemma3ForCausalLM" => (i + 1) % (SlidingWindowPattern ?? 6) != 0 ? Sliding : Full,
            "Qwen2ForCausalLM" or "Qwen3ForCausalLM" or "Qwen2MoeForCausalLM" => WindowSize is not null && i >= (MaxWindowLayers ?? 28) ? Sliding : Full,
            _ => WindowSize is not null ? Sliding : Full,
        };

    /// <summary>The attention window of layer <paramref name="layer"/> in tokens, or null when it attends globally.</summary>
    public int? LayerWindow(int layer) => LayerType(layer) == Sliding ? WindowSize : null;

    /// <summary>The window of the sliding layers, or null when every layer attends globally (for cost estimates).</summary>
    [JsonIgnore] public int? EffectiveSlidingWindow => Enumerable.Range(0, NumHiddenLayers).Select(LayerWindow).FirstOrDefault(w => w is not null);

    void ValidateFamily()
    {
        string expected = IsGpt2 ? "gelu_new" : IsGemma ? "gelu_pytorch_tanh" : "silu";
        // GPT-2's gelu_new is the tanh approximation of GELU, as gelu_pytorch_tanh.
        if (ActivationName != expected)
            throw Unsupported(ActivationField, $"activation '{ActivationName}' is not implemented for {Architecture} (expected '{expected}')");
        if (IsGpt2) return; // no rotary embeddings, windows or experts
        if (PartialRotaryFactor is double prf && prf != 1.0)
        {
            if (!IsPhi3) throw Unsupported("partial_rotary_factor", $"{prf} is not implemented for {Architecture} (only Phi3ForCausalLM rotates part of each head)");
            if (!(prf > 0 && prf <= 1)) throw Error("partial_rotary_factor", $"must be in (0, 1], got {prf}");
        }
        if (RotaryDim < 2 || RotaryDim % 2 != 0) throw Error("partial_rotary_factor", $"rotary embeddings need an even number of rotated dimensions, got {RotaryDim}");
        Scaling = Models.RopeScaling.Parse(RopeScaling, RotaryDim, MaxPositionEmbeddings, IsPhi3 ? OriginalMaxPositionEmbeddings ?? 4096 : null, Source);
        if (HasLocalRope && LocalRopeTheta <= 0) throw Error("rope_local_base_freq", $"must be positive, got {LocalRopeTheta}");
        if (LayerTypes is { } types && Arch != "LlamaForCausalLM")
        {
            if (types.Count != NumHiddenLayers) throw Error("layer_types", $"has {types.Count} entries for {NumHiddenLayers} layers");
            if (types.FirstOrDefault(t => t is not (Sliding or Full)) is { } bad) throw Unsupported("layer_types", $"'{bad}' is not supported (expected '{Sliding}' or '{Full}')");
        }
        if (IsMixtral)
        {
            if (NumLocalExperts <= 0) throw Error("num_local_experts", $"must be a positive integer, got {NumLocalExperts}");
            if (NumExpertsPerToken <= 0 || NumExpertsPerToken > NumLocalExperts)
                throw Error("num_experts_per_tok", $"must be between 1 and num_local_experts ({NumLocalExperts}), got {NumExpertsPerToken}");
        }
        if (IsQwen2Moe)
        {
            foreach (var (field, value) in new[] { ("num_experts", NumExperts), ("moe_intermediate_size", MoeIntermediateSize), ("shared_expert_intermediate_size", SharedExpertIntermediateSize), ("decoder_sparse_step", DecoderSparseStep) })
                if (value <= 0) throw Error(field, $"must be a positive integer, got {value}");
            if (NumExpertsPerToken <= 0 || NumExpertsPerToken > NumExperts)
                throw Error("num_experts_per_tok", $"must be between 1 and num_experts ({NumExperts}), got {NumExpertsPerToken}");
        }
        if (SlidingWindowPattern is <= 0) throw Error("sliding_window_pattern", $"must be positive, got {SlidingWindowPattern}");
        if (EffectiveSlidingWindow is <= 0) throw Error("sliding_window", $"must be positive, got {EffectiveSlidingWindow}");
        if (QueryPreAttnScalar is <= 0) throw Error("query_pre_attn_scalar", $"must be positive, got {QueryPreAttnScalar}");
        foreach (var (field, cap) in new[] { ("attn_logit_softcapping", AttentionSoftcap), ("final_logit_softcapping", FinalSoftcap) })
            if (cap is double c && !(c > 0)) throw Error(field, "must be a positive number or null");
    }
}
