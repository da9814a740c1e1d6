using Amalgam.Models;

namespace Amalgam.Evaluation;

/// <summary>
/// FLOPs per example of each way of serving experts, built from <see cref="FlopCounter"/>'s parts. An example is
/// a prompt of <see cref="PromptTokens"/> tokens and an answer of <see cref="AnswerTokens"/> (the study's mean
/// lengths); every one of its N = prompt + answer tokens runs one forward (with a KV cache, prefill plus decoding
/// cost the same products), attending on average to (N + 1) / 2 positions. Per-example work (a router's features
/// and MLP, a per-example merge) is added once, so it is amortised over the N tokens. relative_flops =
/// <c>cost / Base()</c>. Counts are what a strategy needs, not what one kernel executes (the dense mixing path
/// multiplies all K experts' factors even for one-hot weights; tokens/s is the measured side of that).
/// </summary>
public sealed class CostModel
{
    /// <param name="config">the base model</param>
    /// <param name="expertModules">the modules one expert adapts, with their ranks (all experts alike)</param>
    /// <param name="promptTokens">mean prompt tokens per example</param>
    /// <param name="answerTokens">mean answer tokens per example (generated, or the scored option)</param>
    public CostModel(DecoderConfig config, IReadOnlyDictionary<string, int> expertModules, double promptTokens, double answerTokens)
    {
        if (!(promptTokens >= 0) || !double.IsFinite(promptTokens)) throw new ArgumentException($"promptTokens: must be a finite number ≥ 0, got {promptTokens}", nameof(promptTokens));
        if (!(answerTokens >= 0) || !double.IsFinite(answerTokens)) throw new ArgumentException($"answerTokens: must be a finite number ≥ 0, got {answerTokens}", nameof(answerTokens));
        if (promptTokens + answerTokens <= 0) throw new ArgumentException("promptTokens + answerTokens: an example needs at least one token", nameof(answerTokens));
        Config = config;
        ExpertModules = expertModules;
        PromptTokens = promptTokens;
        AnswerTokens = answerTokens;
        int? window = config.EffectiveSlidingWindow;
        ForwardPerToken = FlopCounter.ForwardFlopsPerToken(config, FlopCounter.MeanAttendedPositions(Tokens, window));
        LoraPerToken = FlopCounter.LoraFlopsPerToken(config, expertModules);
    }

    public DecoderConfig Config { get; }
    public IReadOnlyDictionary<string, int> ExpertModules { get; }
    public double PromptTokens { get; }
    public double AnswerTokens { get; }
    /// <summary>N: tokens per example that run a forward.</summary>
    public double Tokens => PromptTokens + AnswerTokens;
    /// <summary>The base forward per token at this example length.</summary>
    public double ForwardPerToken { get; }
    /// <summary>One expert's unfolded LoRA per token.</summary>
    public double LoraPerToken { get; }

    /// <summary>The base model alone: N forwards.</summary>
    public double Base() => Tokens * ForwardPerToken;

    /// <summary>A merge folded into the weights (any method, any number of experts): exactly the base's cost.</summary>
    public double FoldedMerge() => Base();

    /// <summary>k experts' LoRAs applied unfolded at every token (a single unfolded expert is k = 1; a per-token mixture of k).</summary>
    public double Loras(int k) => Tokens * (ForwardPerToken + Count(k, nameof(k)) * LoraPerToken);

    /// <summary>
    /// Output ensembling: k full forwards per token, each with its expert's LoRA unfolded (or folded into k stored
    /// models with <paramref name="foldedExperts"/>). Combining k distributions is elementwise and not counted.
    /// </summary>
    public double Ensemble(int k, bool foldedExperts = false) =>
        Count(k, nameof(k)) * Tokens * (ForwardPerToken + (foldedExperts ? 0 : LoraPerToken));

    /// <summary>
    /// A router's prompt features from the base model (learned and centroid routers, Twin-Merging): these read the
    /// base's hidden states, which the experts' forward cannot supply (its layers are already adapted), so they cost
    /// a separate pass over the prompt through the layers <paramref name="source"/> runs: P·k·(layer products +
    /// attention over the prompt), k = L for the full pass (up to the final norm, no output projection), k for the
    /// residual stream after layer k (k/L of the full pass), 0 for the token embeddings (a lookup; the mean over the
    /// prompt is elementwise, and left out like every elementwise step).
    /// </summary>
    public double PromptFeatures(Routing.FeatureSource source = default) =>
        PromptTokens * source.LayersRun(Config.NumHiddenLayers)
        * (FlopCounter.LayerLinearFlopsPerToken(Config)
           + FlopCounter.AttentionFlopsPerToken(Config, FlopCounter.MeanAttendedPositions(PromptTokens, Config.EffectiveSlidingWindow)));

    /// <summary>A router MLP once per example: 2·Σ sizes[i]·sizes[i+1] (e.g. [hidden, 256, K]).</summary>
    public double RouterMlp(IReadOnlyList<int> layerSizes)
    {
        if (layerSizes.Count < 2 || layerSizes.Any(s => s <= 0))
            throw new ArgumentException($"layerSizes: need at least input and output sizes, all positive, got [{string.Join(", ", layerSizes)}]", nameof(layerSizes));
        double sum = 0;
        for (int i = 0; i + 1 < layerSizes.Count; i++) sum += 2.0 * layerSizes[i] * layerSizes[i + 1];
        return sum;
    }

    /// <summary>A nearest-centroid router once per example: K dot products with the hidden-size feature (2·K·hidden).</summary>
    public double CentroidScores(int experts) => 2.0 * Count(experts, nameof(experts)) * Config.HiddenSize;

    /// <summary>
    /// Arrow's routing at every token: on each adapted module, K dot products of the module input with each expert's
    /// prototype (2·K·in), summed over modules, times N tokens.
    /// </summary>
    public double ArrowScores(int experts) =>
        Tokens * 2.0 * Count(experts, nameof(experts)) * ExpertModules.Keys.Sum(m => (double)FlopCounter.ModuleShape(Config, m).In);

    /// <summary>
    /// Materialising a per-example merge of k experts into every adapted weight: Σ_modules k·2·r·in·out (each
    /// Bₖ·Aₖ product; the weighted sums are elementwise), once per example (Twin-Merging's dynamic merge).
    /// </summary>
    public double DynamicMerge(int k) =>
        Count(k, nameof(k)) * ExpertModules.Sum(kv => { var (i, o) = FlopCounter.ModuleShape(Config, kv.Key); return 2.0 * kv.Value * i * o; });

    /// <summary>Learned router: prompt features from <paramref name="source"/>, the MLP, then the top-k experts' LoRAs at every token.</summary>
    public double LearnedRouter(int topK, IReadOnlyList<int> mlpSizes, Routing.FeatureSource source = default) =>
        PromptFeatures(source) + RouterMlp(mlpSizes) + Loras(topK);

    /// <summary>Centroid router over K experts: prompt features from <paramref name="source"/>, K dot products, then the top-k experts' LoRAs.</summary>
    public double CentroidRouter(int experts, int topK, Routing.FeatureSource source = default) =>
        PromptFeatures(source) + CentroidScores(experts) + Loras(topK);

    /// <summary>Arrow over K experts: per-token, per-module prototype scores, then the top-k experts' LoRAs.</summary>
    public double ArrowRouter(int experts, int topK) => ArrowScores(experts) + Loras(topK);

    /// <summary>
    /// Twin-Merging as Amalgam serves it: prompt features, the router MLP, then base forwards with the shared merge
    /// folded in and the K exclusive parts applied in factored form at every token. LoRA FLOPs are linear in the
    /// rank, so exclusive parts of rank <paramref name="exclusiveRank"/> cost exclusiveRank / expertRank of an
    /// expert's LoRA each.
    /// </summary>
    public double TwinMerging(int experts, IReadOnlyList<int> mlpSizes, int exclusiveRank, int expertRank) =>
        PromptFeatures() + RouterMlp(mlpSizes)
        + Tokens * (ForwardPerToken + Count(experts, nameof(experts)) * LoraPerToken * Count(exclusiveRank, nameof(exclusiveRank)) / Count(expertRank, nameof(expertRank)));

    /// <summary>
    /// Twin-Merging as the paper runs it: prompt features, the router MLP, a per-example merge of K experts
    /// materialised into the weights (<see cref="DynamicMerge"/>), then base forwards. Cheaper than the factored form
    /// only when Σ r·in·out per example is below the tokens' LoRA cost (long prompts, many tokens).
    /// </summary>
    public double TwinMergingMaterialised(int experts, IReadOnlyList<int> mlpSizes) => PromptFeatures() + RouterMlp(mlpSizes) + DynamicMerge(experts) + FoldedMerge();

    /// <summary><paramref name="flops"/> per example over the base model's.</summary>
    public double Relative(double flops) => flops / Base();

    static int Count(int k, string name) =>
        k > 0 ? k : throw new ArgumentException($"{name}: must be at least 1, got {k}", name);
}
