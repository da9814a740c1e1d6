using System.Text.Json;
using System.Text.Json.Serialization;

namespace Amalgam.Models;

/// <summary>
/// A Hugging Face decoder's <c>config.json</c> (Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 text, Phi-3 and
/// Mixtral, Qwen2-MoE families), mirrored field by field and validated once at load: anything this decoder cannot run exactly is
/// refused, naming the field. What each family does differently is derived in DecoderConfig.Families.cs.
/// </summary>
public sealed partial class DecoderConfig
{
    public static readonly IReadOnlyDictionary<string, string> SupportedArchitectures = new Dictionary<string, string>
    {
        ["LlamaForCausalLM"] = "llama",
        ["MistralForCausalLM"] = "mistral",
        ["Qwen2ForCausalLM"] = "qwen2",
        ["Qwen3ForCausalLM"] = "qwen3",
        ["Gemma2ForCausalLM"] = "gemma2",
        ["Gemma3ForCausalLM"] = "gemma3_text",
        ["Phi3ForCausalLM"] = "phi3",
        ["MixtralForCausalLM"] = "mixtral",
        ["Qwen2MoeForCausalLM"] = "qwen2_moe",
        ["GPT2LMHeadModel"] = "gpt2",
    };

    [JsonPropertyName("architectures")] public List<string>? Architectures { get; set; }
    [JsonPropertyName("model_type")] public string? ModelType { get; set; }
    [JsonPropertyName("vocab_size")] public int VocabSize { get; set; }
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; set; }
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; set; }
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; set; }
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; set; }
    [JsonPropertyName("num_key_value_heads")] public int? NumKeyValueHeads { get; set; }
    [JsonPropertyName("head_dim")] public int? HeadDimField { get; set; }
    [JsonPropertyName("hidden_act")] public string? HiddenAct { get; set; }
    [JsonPropertyName("hidden_activation")] public string? HiddenActivation { get; set; }
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; set; } = 2048;
    /// <summary>Absent means the config class's default: 1e-5 and 1e6 for Mixtral, 1e-6 and 10000 otherwise.</summary>
    [JsonPropertyName("rms_norm_eps")] public double RmsNormEps { get => rmsNormEps ?? (IsMixtral ? 1e-5 : 1e-6); set => rmsNormEps = value; }
    private double? rmsNormEps;
    [JsonPropertyName("rope_theta")] public double RopeTheta { get => ropeTheta ?? (IsMixtral ? 1e6 : 10000.0); set => ropeTheta = value; }
    private double? ropeTheta;
    [JsonPropertyName("rope_scaling")] public JsonElement? RopeScaling { get; set; }
    [JsonPropertyName("rope_local_base_freq")] public double? RopeLocalBaseFreq { get; set; }
    [JsonPropertyName("partial_rotary_factor")] public double? PartialRotaryFactor { get; set; }
    [JsonPropertyName("original_max_position_embeddings")] public int? OriginalMaxPositionEmbeddings { get; set; }

    /// <summary>Absent means the config class's default: tied for Gemma (whose save_pretrained omits it) and GPT-2, untied otherwise.</summary>
    [JsonPropertyName("tie_word_embeddings")]
    public bool TieWordEmbeddings { get => tieWordEmbeddings ?? (IsGemma || IsGpt2); set => tieWordEmbeddings = value; }
    private bool? tieWordEmbeddings;
    [JsonPropertyName("attention_bias")] public bool AttentionBias { get; set; }
    [JsonPropertyName("mlp_bias")] public bool MlpBias { get; set; }
    [JsonPropertyName("sliding_window")] public int? SlidingWindow { get; set; }
    [JsonPropertyName("use_sliding_window")] public bool? UseSlidingWindow { get; set; }
    [JsonPropertyName("max_window_layers")] public int? MaxWindowLayers { get; set; }
    [JsonPropertyName("sliding_window_pattern")] public int? SlidingWindowPattern { get; set; }
    [JsonPropertyName("layer_types")] public List<string>? LayerTypes { get; set; }
    [JsonPropertyName("query_pre_attn_scalar")] public double? QueryPreAttnScalar { get; set; }
    [JsonPropertyName("attn_logit_softcapping")] public JsonElement? AttnLogitSoftcapping { get; set; }
    [JsonPropertyName("final_logit_softcapping")] public JsonElement? FinalLogitSoftcapping { get; set; }
    [JsonPropertyName("bos_token_id")] public JsonElement? BosTokenId { get; set; }
    [JsonPropertyName("eos_token_id")] public JsonElement? EosTokenId { get; set; }
    [JsonPropertyName("pad_token_id")] public JsonElement? PadTokenId { get; set; }
    [JsonPropertyName("torch_dtype")] public string? TorchDtype { get; set; }
    /// <summary>GPT-2's names for the sizes (GPT2Config): copied into the common fields by <see cref="Validate"/>.</summary>
    [JsonPropertyName("n_embd")] public int? NEmbd { get; set; }
    [JsonPropertyName("n_layer")] public int? NLayer { get; set; }
    [JsonPropertyName("n_head")] public int? NHead { get; set; }
    [JsonPropertyName("n_positions")] public int? NPositions { get; set; }
    [JsonPropertyName("n_inner")] public int? NInner { get; set; }
    [JsonPropertyName("layer_norm_epsilon")] public double? LayerNormEpsilon { get; set; }
    [JsonPropertyName("activation_function")] public string? ActivationFunction { get; set; }
    /// <summary>Mixtral: experts per sparse-MoE layer and how many each token is routed to (MixtralConfig's defaults 8 and 2).</summary>
    /// (Nullable as read, like the Qwen2-MoE fields below, so that a saved dense config does not gain them.)
    [JsonPropertyName("num_local_experts")] public int? NumLocalExpertsField { get; set; }
    [JsonIgnore] public int NumLocalExperts { get => NumLocalExpertsField ?? 8; set => NumLocalExpertsField = value; }
    /// <summary>Experts each token is routed to: Mixtral's default 2, Qwen2-MoE's 4.</summary>
    [JsonPropertyName("num_experts_per_tok")] public int? NumExpertsPerTokenField { get; set; }
    [JsonIgnore] public int NumExpertsPerToken { get => NumExpertsPerTokenField ?? (IsQwen2Moe ? 4 : 2); set => NumExpertsPerTokenField = value; }
    /// <summary>Qwen2-MoE (Qwen2MoeConfig's defaults): routed experts, their width, the shared expert's width, whether the top-k weights are renormalised, which layers are sparse.</summary>
    /// (Nullable as read, so that a saved config of another family does not gain these fields.)
    [JsonPropertyName("num_experts")] public int? NumExpertsField { get; set; }
    [JsonPropertyName("moe_intermediate_size")] public int? MoeIntermediateSizeField { get; set; }
    [JsonPropertyName("shared_expert_intermediate_size")] public int? SharedExpertIntermediateSizeField { get; set; }
    [JsonPropertyName("norm_topk_prob")] public bool? NormTopkProbField { get; set; }
    [JsonPropertyName("decoder_sparse_step")] public int? DecoderSparseStepField { get; set; }
    [JsonPropertyName("mlp_only_layers")] public List<int>? MlpOnlyLayers { get; set; }
    [JsonIgnore] public int NumExperts => NumExpertsField ?? 60;
    [JsonIgnore] public int MoeIntermediateSize => MoeIntermediateSizeField ?? 1408;
    [JsonIgnore] public int SharedExpertIntermediateSize => SharedExpertIntermediateSizeField ?? 5632;
    [JsonIgnore] public bool NormTopkProb => NormTopkProbField ?? false;
    [JsonIgnore] public int DecoderSparseStep => DecoderSparseStepField ?? 1;

    /// <summary>The file this configuration was read from, for error messages.</summary>
    [JsonIgnore] public string Source { get; private set; } = "config.json";

    /// <summary>The supported architecture named in <c>architectures</c>.</summary>
    [JsonIgnore] public string Architecture => Architectures!.First(SupportedArchitectures.ContainsKey);

    [JsonIgnore] public int KeyValueHeads => NumKeyValueHeads ?? NumAttentionHeads;

    [JsonIgnore] public IReadOnlyList<int> EosTokenIds => Ids(EosTokenId);
    [JsonIgnore] public int? BosId => Ids(BosTokenId).Cast<int?>().FirstOrDefault();
    [JsonIgnore] public int? PadId => Ids(PadTokenId).Cast<int?>().FirstOrDefault();

    static IReadOnlyList<int> Ids(JsonElement? e) => e switch
    {
        { ValueKind: JsonValueKind.Number } n => [n.GetInt32()],
        { ValueKind: JsonValueKind.Array } a => a.EnumerateArray().Select(x => x.GetInt32()).ToList(),
        _ => [],
    };

    /// <summary>Reads and validates <c>config.json</c> in a checkpoint folder (or the file itself).</summary>
    public static DecoderConfig Load(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        var config = JsonConfigFile.Read<DecoderConfig>(file, "is this a Hugging Face checkpoint folder?");
        config.Source = file;
        config.Validate();
        return config;
    }

    InvalidDataException Error(string field, string message) => new($"{Source}: {field}: {message}");
    NotSupportedException Unsupported(string field, string message) => new($"{Source}: {field}: {message}");

    /// <summary>Refuses anything that cannot be computed exactly; positive sizes, consistent heads.</summary>
    public void Validate()
    {
        if (Architectures?.FirstOrDefault(SupportedArchitectures.ContainsKey) == "GPT2LMHeadModel") UseGpt2Names();
        if (Architectures is null || Architectures.Count == 0)
            throw Error("architectures", "missing; expected one of " + string.Join(", ", SupportedArchitectures.Keys));
        if (!Architectures.Any(SupportedArchitectures.ContainsKey))
            throw Unsupported("architectures", $"'{string.Join(", ", Architectures)}' is not supported; supported: {string.Join(", ", SupportedArchitectures.Keys)}");
        if (ModelType is not null && ModelType != SupportedArchitectures[Architecture])
            throw Error("model_type", $"'{ModelType}' does not match architecture {Architecture} (expected '{SupportedArchitectures[Architecture]}')");
        foreach (var (field, value) in new[] { ("vocab_size", VocabSize), ("hidden_size", HiddenSize), ("intermediate_size", IntermediateSize),
                     ("num_hidden_layers", NumHiddenLayers), ("num_attention_heads", NumAttentionHeads), ("num_key_value_heads", KeyValueHeads),
                     ("max_position_embeddings", MaxPositionEmbeddings) })
            if (value <= 0) throw Error(field, $"must be a positive integer, got {value}");
        if (HeadDim <= 0) throw Error("head_dim", $"must be a positive integer, got {HeadDim}"); // after the heads: it may be hidden_size / heads
        foreach (var (field, id) in new[] { ("bos_token_id", BosTokenId), ("eos_token_id", EosTokenId), ("pad_token_id", PadTokenId) })
            if (id is { ValueKind: not JsonValueKind.Null } e && !(e.ValueKind == JsonValueKind.Number ? e.TryGetInt32(out _)
                    : e.ValueKind == JsonValueKind.Array && e.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out _))))
                throw Error(field, $"expected an integer token id or a list of them, got {(e.GetRawText() is var raw && raw.Length > 40 ? raw[..40] + "…" : raw)}");
        CheckSizes();
        if (HeadDimField is null && !IsGemma && Arch != "Qwen3ForCausalLM" && HiddenSize % NumAttentionHeads != 0)
            throw IsGpt2 ? Error("n_head", $"n_embd {HiddenSize} is not divisible by {NumAttentionHeads} heads")
                : Error("num_attention_heads", $"hidden_size {HiddenSize} is not divisible by {NumAttentionHeads} heads and no head_dim is given");
        if (Rotary && HeadDim % 2 != 0) throw Error("head_dim", $"rotary embeddings need an even head dimension, got {HeadDim}");
        if (NumAttentionHeads % KeyValueHeads != 0)
            throw Error("num_key_value_heads", $"{NumAttentionHeads} attention heads are not a multiple of {KeyValueHeads} key/value heads");
        if (RmsNormEps <= 0) throw Error(IsGpt2 ? "layer_norm_epsilon" : "rms_norm_eps", $"must be positive, got {RmsNormEps}");
        if (RopeTheta <= 0) throw Error("rope_theta", $"must be positive, got {RopeTheta}");
        ValidateFamily();
    }

    /// <summary>The weights' element count, in 64-bit arithmetic (throws <see cref="OverflowException"/> past 2^63).</summary>
    [JsonIgnore]
    public long ParameterCount
    {
        get
        {
            checked
            {
                if (IsGpt2) return Gpt2ParameterCount;
                long h = HiddenSize, q = (long)NumAttentionHeads * HeadDim, kv = (long)KeyValueHeads * HeadDim;
                long attention = h * q + 2 * h * kv + q * h + (QkvBias ? q + 2 * kv : 0) + 2 * h, dense = 3 * h * IntermediateSize, L = NumHiddenLayers;
                // Closed form, not a loop over layers: configs are validated before anything is allocated, and a
                // random config may name billions of layers (the property test's inputs).
                long layers;
                if (IsMixtral) layers = L * (attention + NumLocalExperts * dense + h * NumLocalExperts); // the experts and the router
                else
                {
                    long sparse = SparseLayerCount();
                    long moe = NumExperts * 3 * h * MoeIntermediateSize + h * NumExperts + 3 * h * SharedExpertIntermediateSize + h; // + shared expert and its gate
                    layers = L * attention + sparse * moe + (L - sparse) * dense;
                }
                return (long)VocabSize * h * (TieWordEmbeddings ? 1 : 2) + layers + h;
            }
        }
    }

    /// <summary>How many layers <see cref="IsSparseLayer"/> holds for a Qwen2-MoE config (0 for dense ones), counted without a loop over layers.</summary>
    long SparseLayerCount()
    {
        if (!IsQwen2Moe || NumExperts <= 0 || DecoderSparseStep <= 0) return 0; // a step ≤ 0 is refused by the family checks
        int step = DecoderSparseStep;
        long onStep = NumHiddenLayers / step;
        long excluded = MlpOnlyLayers?.Distinct().Count(m => m >= 0 && m < NumHiddenLayers && (m + 1) % step == 0) ?? 0;
        return onStep - excluded;
    }

    /// <summary>
    /// Sizes are checked before anything is allocated: every projection's width must fit the 32-bit sizes the
    /// layers use, and the weights (at torch_dtype) must fit in the memory this process may use.
    /// </summary>
    void CheckSizes()
    {
        foreach (var (field, value) in new[] { ("num_attention_heads", (long)NumAttentionHeads * HeadDim), ("num_key_value_heads", (long)KeyValueHeads * HeadDim) })
            if (value > int.MaxValue) throw Error(field, $"{value:N0} = heads × head_dim overflows a 32-bit size");
        long parameters;
        try { parameters = ParameterCount; }
        catch (OverflowException) { throw Error("hidden_size", "the weight count overflows a 64-bit integer"); }
        int bytesPer = TorchDtype is "bfloat16" or "float16" ? 2 : 4;
        double bytes = (double)parameters * bytesPer;
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (available > 0 && bytes > available)
            throw Error("num_hidden_layers", $"{parameters:N0} weights need an estimated {bytes / (1L << 30):F1} GiB, more than the {available / (double)(1L << 30):F1} GiB of memory available");
    }

    /// <summary>Refuses a sequence longer than the model's context (max_position_embeddings), before the forward pass grows with it.</summary>
    public void CheckSequenceLength(int totalLength)
    {
        // Dynamic (NTK) rope scaling exists to run past max_position_embeddings: its base grows with the length.
        if (Scaling.Type == "dynamic") return;
        if (totalLength > MaxPositionEmbeddings)
            throw new ArgumentException($"{Source}: max_position_embeddings: a sequence of {totalLength} tokens is longer than the model's context of {MaxPositionEmbeddings} positions; shorten the prompt");
    }
}
