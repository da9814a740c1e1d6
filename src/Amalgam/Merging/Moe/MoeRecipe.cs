using System.Globalization;
using Amalgam.Merging.Recipes;
using YamlDotNet.RepresentationModel;
using static TorchSharp.torch;

namespace Amalgam.Merging.Moe;

/// <summary>One expert of a mergekit-moe config: the model whose MLPs become expert E, and the prompts that set its gate.</summary>
public sealed record MoeExpertSpec(string SourceModel, IReadOnlyList<string> PositivePrompts, IReadOnlyList<string> NegativePrompts,
    double? NoiseScale = null, double? ResidualScale = null);

/// <summary>
/// A mergekit-moe config (mergekit/moe/config.py's <c>MoEMergeConfig</c>): a base whose attention, norms and
/// embeddings are kept, experts whose MLPs become the experts of a Mixtral sparse-MoE layer, and how the router is
/// initialised (<c>gate_mode</c>). Checked as mergekit's <c>is_bad_config</c> checks it; what Amalgam does not
/// build (shared experts, Qwen2-MoE or DeepSeek outputs) is refused naming the field.
/// </summary>
public sealed record MoeRecipe(string BaseModel, IReadOnlyList<MoeExpertSpec> Experts)
{
    public static readonly string[] GateModes = ["hidden", "hidden_last", "hidden_avg", "cheap_embed", "random", "uniform_random"];

    public string GateMode { get; init; } = "hidden";
    public int ExpertsPerToken { get; init; } = 2;
    public ScalarType? Dtype { get; init; }
    /// <summary>Amalgam: seeds <c>random</c>/<c>uniform_random</c> gates and <c>noise_scale</c> (mergekit draws from torch's global generator).</summary>
    public long RandomSeed { get; init; }
    public long OutShardSize { get; init; } = MergeRecipe.DefaultShardSize;
    /// <summary>mergekit's <c>--i-understand-this-is-not-useful-without-training</c>: allow every expert to be the same model.</summary>
    public bool AllowAllSame { get; init; }
    public string Source { get; init; } = "recipe";
    /// <summary><c>architecture: qwen</c>: mergekit-moe's Qwen2-MoE output, with exactly one shared expert; else Mixtral.</summary>
    public bool Qwen { get; init; }
    /// <summary>mergekit's <c>shared_experts</c> (Qwen2-MoE output: exactly one, whose MLP every token runs, behind its own gate).</summary>
    public IReadOnlyList<MoeExpertSpec> SharedExperts { get; init; } = [];
    /// <summary>The config as written, saved beside the result as mergekit_moe_config.yml.</summary>
    public string? Text { get; init; }

    static readonly string[] Fields = ["base_model", "experts", "gate_mode", "dtype", "experts_per_token", "shared_experts", "architecture", "random_seed", "out_shard_size"];
    static readonly string[] ExpertFields = ["source_model", "positive_prompts", "negative_prompts", "noise_scale", "residual_scale"];

    /// <summary>Whether a YAML text is a mergekit-moe config (top-level <c>experts</c> or <c>gate_mode</c>, no <c>merge_method</c>).</summary>
    public static bool IsMoeConfig(string yaml, string source = "recipe")
    {
        var stream = Inputs.YamlInput.Load(yaml, source);
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root) return false;
        bool Has(string k) => root.Children.ContainsKey(new YamlScalarNode(k));
        return (Has("experts") || Has("gate_mode")) && !Has("merge_method");
    }

    public static MoeRecipe Load(string file) => Parse(File.ReadAllText(file), Path.GetFileName(file));

    public static MoeRecipe Parse(string yaml, string source = "recipe")
    {
        InvalidDataException Error(string field, string why) => new($"{source}: {field}: {why}");
        var stream = Inputs.YamlInput.Load(yaml, source);
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new InvalidDataException($"{source}: expected one YAML mapping (base_model, experts, gate_mode, ...)");
        var map = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (k, v) in root.Children)
        {
            string key = Inputs.YamlInput.Key(k, null, source);
            if (!Fields.Contains(key)) throw Error(key, $"unknown field of a mergekit-moe config (known: {string.Join(", ", Fields)})");
            map[key] = v;
        }
        string Scalar(string field, YamlNode n) => n is YamlScalarNode { Value: { } s } ? s : throw Error(field, "expected a single value");
        double Number(string field, YamlNode n) =>
            double.TryParse(Scalar(field, n), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d) ? d : throw Error(field, $"expected a number, got '{Scalar(field, n)}'");
        List<string> Prompts(string field, YamlNode n) => n switch
        {
            YamlSequenceNode seq => seq.Children.Select((p, i) => Scalar($"{field}[{i}]", p)).ToList(),
            YamlScalarNode { Value: null or "" or "null" } => [],
            _ => throw Error(field, "expected a list of prompts"),
        };

        if (!map.TryGetValue("base_model", out var b)) throw Error("base_model", "missing; a mergekit-moe config names the base whose attention and embeddings are kept");
        string baseModel = Scalar("base_model", b);
        bool qwen = false;
        if (map.TryGetValue("architecture", out var a) && Scalar("architecture", a) is { } arch)
        {
            string lower = arch.ToLowerInvariant();
            qwen = lower is "qwen" or "qwen2" or "qwen2_moe" or "qwen moe";
            if (!qwen && !"mixtral".StartsWith(lower, StringComparison.Ordinal))
                throw Error("architecture", $"'{arch}' is not supported; Amalgam builds mergekit-moe's Mixtral and Qwen (Qwen2-MoE) outputs (its Qwen3-MoE and DeepSeek-MoE outputs are not implemented)");
        }
        bool hasShared = map.TryGetValue("shared_experts", out var shared) && shared is YamlSequenceNode { Children.Count: > 0 };
        if (hasShared && !qwen)
            throw Error("shared_experts", "shared experts need architecture: qwen (mergekit-moe's Qwen2-MoE output); without it mergekit picks its DeepSeek-MoE output, which is not implemented, and Mixtral has none");
        if (qwen && (!hasShared || ((YamlSequenceNode)shared!).Children.Count != 1))
            throw Error("shared_experts", "architecture: qwen needs exactly one shared expert (mergekit's Qwen MoE output)");
        if (!map.TryGetValue("experts", out var ex) || ex is not YamlSequenceNode { Children.Count: > 0 } list)
            throw Error("experts", "expected a non-empty list of {source_model, positive_prompts, negative_prompts}");
        List<MoeExpertSpec> Experts(YamlSequenceNode list, string name)
        {
        var experts = new List<MoeExpertSpec>();
        for (int i = 0; i < list.Children.Count; i++)
        {
            string at = $"{name}[{i}]";
            if (list.Children[i] is not YamlMappingNode e) throw Error(at, "expected a mapping with source_model and positive_prompts");
            var f = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
            foreach (var (k, v) in e.Children)
            {
                string key = Inputs.YamlInput.Key(k, at, source);
                if (!ExpertFields.Contains(key)) throw Error($"{at}.{key}", $"unknown field of an expert (known: {string.Join(", ", ExpertFields)})");
                f[key] = v;
            }
            if (!f.TryGetValue("source_model", out var sm)) throw Error($"{at}.source_model", "missing");
            experts.Add(new MoeExpertSpec(Scalar($"{at}.source_model", sm),
                f.TryGetValue("positive_prompts", out var pp) ? Prompts($"{at}.positive_prompts", pp) : [],
                f.TryGetValue("negative_prompts", out var np) ? Prompts($"{at}.negative_prompts", np) : [],
                f.TryGetValue("noise_scale", out var ns) ? Number($"{at}.noise_scale", ns) : null,
                f.TryGetValue("residual_scale", out var rs) ? Number($"{at}.residual_scale", rs) : null));
        }
        return experts;
        }
        var recipe = new MoeRecipe(baseModel, Experts(list, "experts")) { Source = source, Text = yaml, Qwen = qwen, SharedExperts = hasShared ? Experts((YamlSequenceNode)shared!, "shared_experts") : [] };
        if (map.TryGetValue("gate_mode", out var g))
        {
            string mode = Scalar("gate_mode", g);
            if (!GateModes.Contains(mode)) throw Error("gate_mode", $"unknown value '{mode}'; expected one of {string.Join(", ", GateModes)}");
            recipe = recipe with { GateMode = mode };
        }
        if (map.TryGetValue("experts_per_token", out var k2))
            recipe = recipe with { ExpertsPerToken = int.TryParse(Scalar("experts_per_token", k2), NumberStyles.Integer, CultureInfo.InvariantCulture, out int k) ? k : throw Error("experts_per_token", "expected an integer") };
        if (map.TryGetValue("dtype", out var d))
            recipe = recipe with { Dtype = RecipeDtype.TryParse(Scalar("dtype", d), out var t) && t != ScalarType.Float64 ? t : throw Error("dtype", $"unknown dtype '{Scalar("dtype", d)}'; expected float32, float16 or bfloat16") };
        if (map.TryGetValue("random_seed", out var rs2))
            recipe = recipe with { RandomSeed = long.TryParse(Scalar("random_seed", rs2), NumberStyles.Integer, CultureInfo.InvariantCulture, out long s) ? s : throw Error("random_seed", "expected an integer") };
        if (map.TryGetValue("out_shard_size", out var z))
            recipe = recipe with { OutShardSize = ByteSize.TryParse(Scalar("out_shard_size", z), out long bytes) ? bytes : throw Error("out_shard_size", $"expected a size such as 5B or 500M, got '{Scalar("out_shard_size", z)}'") };
        return recipe.Checked();
    }

    /// <summary>mergekit's <c>is_bad_config</c>: at least k experts; with prompt-based gates, prompts for every expert that differ between experts; experts that are not all one model.</summary>
    public MoeRecipe Checked()
    {
        InvalidDataException Error(string field, string why) => new($"{Source}: {field}: {why}");
        if (ExpertsPerToken < 1) throw Error("experts_per_token", $"must be at least 1, got {ExpertsPerToken}");
        if (Experts.Count < ExpertsPerToken) throw Error("experts", $"{Experts.Count} experts are fewer than experts_per_token ({ExpertsPerToken})");
        foreach (var (e, i) in Experts.Select((e, i) => (e, i)))
        {
            if (e.NoiseScale is < 0) throw Error($"experts[{i}].noise_scale", $"must be non-negative, got {e.NoiseScale}");
            if (GateMode is not ("random" or "uniform_random") && e.PositivePrompts.Count == 0)
                throw Error($"experts[{i}].positive_prompts", $"missing; gate_mode {GateMode} sets each expert's gate from its prompts");
        }
        if (Qwen && GateMode is not ("random" or "uniform_random") && SharedExperts.Any(e => e.PositivePrompts.Count == 0))
            throw Error("shared_experts[0].positive_prompts", "missing; the Qwen MoE output sets the shared expert's gate from its prompts (mergekit requires them)");
        if (GateMode is "random" or "uniform_random") return this; // mergekit skips the other checks for random gates
        static string Key(MoeExpertSpec e) => string.Join("\u0001", e.PositivePrompts) + "\u0002" + string.Join("\u0001", e.NegativePrompts);
        if (Experts.Count > 1 && Experts.All(e => Key(e) == Key(Experts[0])))
            throw Error("experts", "the positive and negative prompts are identical for every expert; the router could not tell the experts apart");
        if (!AllowAllSame && Experts.Count > 1 && Experts.All(e => e.SourceModel == Experts[0].SourceModel))
            throw Error("experts", "every expert is the same model: the result would cost more and compute the same (mergekit's --i-understand-this-is-not-useful-without-training)");
        return this;
    }
}
