using Amalgam.Models;

namespace Amalgam.Evaluation;

/// <summary>
/// Forward FLOPs of a Llama-family decoder counted from its configuration, 2 FLOPs per multiply-add, matrix
/// products only: norms, rotary embeddings, softmax, SiLU, residual adds, biases and LoRA scales are elementwise,
/// O(hidden) per token against O(hidden²) for the products, and are left out (the usual convention, as in Kaplan
/// et al. 2020). The embedding lookup is free; the output projection is counted (tied or not, it is a product).
/// Attention's two products with the keys and values grow with the number of positions a token attends to; see
/// <see cref="MeanAttendedPositions"/> for the convention.
/// </summary>
public static class FlopCounter
{
    /// <summary>The linear modules of one decoder layer, by their checkpoint names.</summary>
    public static IReadOnlyList<string> LayerModules { get; } =
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];

    /// <summary>
    /// (in, out) features of a linear module, from the last part of its name: q/k/v/o_proj, gate/up/down_proj,
    /// Phi-3's fused qkv_proj and gate_up_proj, lm_head. Works for full names (<c>model.layers.3.mlp.down_proj</c>) and bare ones (<c>down_proj</c>).
    /// </summary>
    public static (long In, long Out) ModuleShape(DecoderConfig config, string module)
    {
        long h = config.HiddenSize, q = (long)config.NumAttentionHeads * config.HeadDim, kv = (long)config.KeyValueHeads * config.HeadDim,
             ff = config.IntermediateSize;
        return module[(module.LastIndexOf('.') + 1)..] switch
        {
            "q_proj" => (h, q),
            "k_proj" or "v_proj" => (h, kv),
            "o_proj" => (q, h),
            "gate_proj" or "up_proj" => (h, ff),
            "qkv_proj" => (h, q + 2 * kv),
            "gate_up_proj" => (h, 2 * ff),
            "down_proj" => (ff, h),
            "lm_head" => (h, config.VocabSize),
            _ => throw new ArgumentException($"module '{module}': not a linear module of a Llama-family decoder (q/k/v/o_proj, qkv_proj, gate/up/down_proj, gate_up_proj, lm_head)", nameof(module)),
        };
    }

    /// <summary>
    /// The mean number of key positions a token attends to over a causal sequence of <paramref name="tokens"/>
    /// positions: position i (1-based) attends to min(i, window) keys, so without a window the mean is (n + 1) / 2.
    /// </summary>
    public static double MeanAttendedPositions(double tokens, int? window = null)
    {
        if (!(tokens >= 0) || !double.IsFinite(tokens)) throw new ArgumentException($"tokens: must be a finite number ≥ 0, got {tokens}", nameof(tokens));
        if (tokens == 0) return 0;
        if (window is not int w || tokens <= w) return (tokens + 1) / 2;
        // Σ_{i≤w} i + (n − w)·w over n positions.
        return (w * (w + 1) / 2.0 + (tokens - w) * w) / tokens;
    }

    /// <summary>
    /// FLOPs of the linear layers of decoder layer <paramref name="layer"/> for one token (no attention products).
    /// A sparse-MoE layer is counted top-k sparse, as it runs: the k experts each token is routed to (not all of
    /// them), the router (hidden → experts), and for Qwen2-MoE the shared expert and its [1, hidden] gate.
    /// </summary>
    public static double LayerLinearFlopsPerToken(DecoderConfig config, int layer)
    {
        double attention = LayerModules.Take(4).Sum(m => { var (i, o) = ModuleShape(config, m); return 2.0 * i * o; });
        double h = config.HiddenSize;
        if (config.IsMixtral)
            return attention + config.NumExpertsPerToken * 2.0 * 3 * h * config.IntermediateSize + 2.0 * h * config.NumLocalExperts;
        if (config.IsSparseLayer(layer))
            return attention + config.NumExpertsPerToken * 2.0 * 3 * h * config.MoeIntermediateSize + 2.0 * h * config.NumExperts
                + 2.0 * 3 * h * config.SharedExpertIntermediateSize + 2.0 * h;
        // GPT-2's MLP has no gate: only up_proj (its c_fc) and down_proj (its c_proj).
        return attention + LayerModules.Skip(config.GatedFeedForward ? 4 : 5).Sum(m => { var (i, o) = ModuleShape(config, m); return 2.0 * i * o; });
    }

    /// <summary>The mean over the layers of <see cref="LayerLinearFlopsPerToken(DecoderConfig, int)"/> (every layer's, for a dense model).</summary>
    public static double LayerLinearFlopsPerToken(DecoderConfig config) =>
        Enumerable.Range(0, config.NumHiddenLayers).Average(l => LayerLinearFlopsPerToken(config, l));

    /// <summary>Attention's QKᵀ and AV products for one token attending to <paramref name="attendedPositions"/> keys, one layer.</summary>
    public static double AttentionFlopsPerToken(DecoderConfig config, double attendedPositions) =>
        2.0 * 2.0 * config.NumAttentionHeads * config.HeadDim * attendedPositions;

    /// <summary>The output projection (hidden -> vocabulary) for one token.</summary>
    public static double LmHeadFlopsPerToken(DecoderConfig config) => 2.0 * config.HiddenSize * config.VocabSize;

    /// <summary>
    /// Forward FLOPs for one token attending to <paramref name="attendedPositions"/> keys (a mean, see
    /// <see cref="MeanAttendedPositions"/>), output projection included unless <paramref name="withLmHead"/> is false
    /// (a router's features stop at the final norm).
    /// </summary>
    public static double ForwardFlopsPerToken(DecoderConfig config, double attendedPositions, bool withLmHead = true) =>
        Enumerable.Range(0, config.NumHiddenLayers).Sum(l => LayerLinearFlopsPerToken(config, l))
        + config.NumHiddenLayers * AttentionFlopsPerToken(config, attendedPositions)
        + (withLmHead ? LmHeadFlopsPerToken(config) : 0);

    /// <summary>One LoRA of rank r on a module, unfolded: x·Aᵀ (r·in multiply-adds) then ·Bᵀ (out·r): 2·r·(in + out).</summary>
    public static double LoraFlopsPerToken(DecoderConfig config, string module, int rank)
    {
        if (rank <= 0) throw new ArgumentException($"rank of '{module}': must be positive, got {rank}", nameof(rank));
        var (i, o) = ModuleShape(config, module);
        return 2.0 * rank * (i + o);
    }

    /// <summary>One expert's LoRA on every module it adapts (module -> rank), per token.</summary>
    public static double LoraFlopsPerToken(DecoderConfig config, IReadOnlyDictionary<string, int> moduleRanks) =>
        moduleRanks.Sum(kv => LoraFlopsPerToken(config, kv.Key, kv.Value));

    /// <summary>Parameters of one expert's LoRA factors: r·(in + out) per adapted module.</summary>
    public static long LoraParameters(DecoderConfig config, IReadOnlyDictionary<string, int> moduleRanks) =>
        moduleRanks.Sum(kv => { var (i, o) = ModuleShape(config, kv.Key); return (long)kv.Value * (i + o); });

    /// <summary>
    /// Every linear module of every layer at one rank, named like the checkpoint (<c>model.layers.{i}.self_attn.q_proj</c>):
    /// what a PEFT "all-linear" adapter adapts.
    /// </summary>
    public static IReadOnlyDictionary<string, int> AllLinearModules(DecoderConfig config, int rank) =>
        Enumerable.Range(0, config.NumHiddenLayers)
            .SelectMany(l => LayerModules.Select(m => $"model.layers.{l}.{m}"))
            .ToDictionary(m => m, _ => rank);

    /// <summary>
    /// Stored parameters of the base model: embeddings (once if tied to the output layer, else twice), the seven
    /// projections and two norms per layer, the final norm, and q/k/v (and o) biases where the architecture has them.
    /// </summary>
    public static long Parameters(DecoderConfig config)
    {
        // every expert, router and shared expert; GPT-2's positions, ungated MLP and biases
        if (config.IsMixtral || config.IsQwen2Moe || config.IsGpt2) return config.ParameterCount;
        long h = config.HiddenSize, v = config.VocabSize;
        long q = (long)config.NumAttentionHeads * config.HeadDim, kv = (long)config.KeyValueHeads * config.HeadDim;
        long perLayer = LayerModules.Sum(m => { var (i, o) = ModuleShape(config, m); return i * o; }) + 2 * h;
        if (config.QkvBias) perLayer += q + 2 * kv;
        if (config.OutputBias) perLayer += h;
        if (config.MlpBias) perLayer += 2 * config.IntermediateSize + h;
        return v * h * (config.TieWordEmbeddings ? 1 : 2) + config.NumHiddenLayers * perLayer + h;
    }
}
