using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Amalgam.Models;

namespace Amalgam.Experts;

/// <summary>
/// PEFT's <c>adapter_config.json</c> for LoRA, mirrored field by field. Fields this implementation cannot honour
/// exactly are refused at load, naming the field; fields that do not change inference (dropout, init) are kept.
/// <see cref="ToJson"/> writes only what PEFT 0.10 to the newest release all accept (see docs/formats.md).
/// </summary>
public sealed class LoraConfig
{
    [JsonPropertyName("peft_type")] public string PeftType { get; set; } = "LORA";
    [JsonPropertyName("task_type")] public string? TaskType { get; set; } = "CAUSAL_LM";
    [JsonPropertyName("base_model_name_or_path")] public string? BaseModelNameOrPath { get; set; }
    [JsonPropertyName("r")] public int R { get; set; } = 8;
    [JsonPropertyName("lora_alpha")] public double LoraAlpha { get; set; } = 8;
    [JsonPropertyName("lora_dropout")] public double LoraDropout { get; set; }
    [JsonPropertyName("use_rslora")] public bool UseRslora { get; set; }
    /// <summary>A list of module-name suffixes, a regex string (full match) or "all-linear".</summary>
    [JsonPropertyName("target_modules")] public JsonElement? TargetModules { get; set; }
    [JsonPropertyName("exclude_modules")] public JsonElement? ExcludeModules { get; set; }
    [JsonPropertyName("rank_pattern")] public Dictionary<string, int>? RankPattern { get; set; } = [];
    [JsonPropertyName("alpha_pattern")] public Dictionary<string, double>? AlphaPattern { get; set; } = [];
    [JsonPropertyName("use_dora")] public bool UseDora { get; set; }
    [JsonPropertyName("fan_in_fan_out")] public bool FanInFanOut { get; set; }
    [JsonPropertyName("bias")] public string Bias { get; set; } = "none";
    [JsonPropertyName("lora_bias")] public bool LoraBias { get; set; }
    [JsonPropertyName("modules_to_save")] public JsonElement? ModulesToSave { get; set; }
    [JsonPropertyName("layers_to_transform")] public JsonElement? LayersToTransform { get; set; }
    [JsonPropertyName("layers_pattern")] public JsonElement? LayersPattern { get; set; }
    [JsonPropertyName("target_parameters")] public JsonElement? TargetParameters { get; set; }
    [JsonPropertyName("layer_replication")] public JsonElement? LayerReplication { get; set; }
    [JsonPropertyName("trainable_token_indices")] public JsonElement? TrainableTokenIndices { get; set; }
    [JsonPropertyName("init_lora_weights")] public JsonElement? InitLoraWeights { get; set; }
    [JsonPropertyName("inference_mode")] public bool InferenceMode { get; set; } = true;

    /// <summary>The file this configuration was read from, for error messages.</summary>
    [JsonIgnore] public string Source { get; set; } = "adapter_config.json";

    static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    public static LoraConfig Load(string file)
    {
        var config = JsonConfigFile.Read<LoraConfig>(file, "is this a PEFT adapter folder?");
        config.Source = file;
        config.Validate();
        return config;
    }

    /// <summary>
    /// The identity of the adapter (peft_type, task_type, base_model_name_or_path, r, lora_alpha, target_modules) and
    /// every other field only where it differs from PEFT's default: PEFT before 0.14 refuses fields it does not know
    /// (<c>LoraConfig.__init__() got an unexpected keyword argument</c>), and fields added later (exclude_modules,
    /// lora_bias, target_parameters, trainable_token_indices, ...) are then absent whenever they are unused.
    /// </summary>
    public string ToJson()
    {
        var o = new JsonObject { ["peft_type"] = PeftType };
        if (TaskType is not null) o["task_type"] = TaskType;
        if (BaseModelNameOrPath is not null) o["base_model_name_or_path"] = BaseModelNameOrPath;
        o["r"] = R;
        o["lora_alpha"] = LoraAlpha;
        o["target_modules"] = Node(TargetModules);
        if (LoraDropout != 0) o["lora_dropout"] = LoraDropout;
        if (UseRslora) o["use_rslora"] = true;
        if (UseDora) o["use_dora"] = true;
        if (FanInFanOut) o["fan_in_fan_out"] = true;
        if (Bias != "none") o["bias"] = Bias;
        if (LoraBias) o["lora_bias"] = true;
        if (RankPattern is { Count: > 0 }) o["rank_pattern"] = JsonSerializer.SerializeToNode(RankPattern);
        if (AlphaPattern is { Count: > 0 }) o["alpha_pattern"] = JsonSerializer.SerializeToNode(AlphaPattern);
        foreach (var (name, value) in new[] { ("exclude_modules", ExcludeModules), ("modules_to_save", ModulesToSave), ("layers_to_transform", LayersToTransform),
                     ("layers_pattern", LayersPattern), ("target_parameters", TargetParameters), ("layer_replication", LayerReplication), ("trainable_token_indices", TrainableTokenIndices) })
            if (IsSet(value)) o[name] = Node(value);
        if (InitLoraWeights is { ValueKind: not (JsonValueKind.True or JsonValueKind.Null or JsonValueKind.Undefined) } init) o["init_lora_weights"] = Node(init);
        if (InferenceMode) o["inference_mode"] = true;
        return o.ToJsonString(Options);
    }

    static JsonNode? Node(JsonElement? e) => e is { ValueKind: not (JsonValueKind.Null or JsonValueKind.Undefined) } v ? JsonNode.Parse(v.GetRawText()) : null;

    /// <summary>The <c>modules_to_save</c> entries (module names or dotted suffixes, as PEFT matches them).</summary>
    [JsonIgnore]
    public IReadOnlyList<string> SavedModules => ModulesToSave is { ValueKind: JsonValueKind.Array } a ? a.EnumerateArray().Select(e => e.GetString()!).ToList() : [];

    static bool IsSet(JsonElement? e) => e is { } v && v.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined or JsonValueKind.False => false,
        JsonValueKind.Array => v.GetArrayLength() > 0,
        JsonValueKind.Object => v.EnumerateObject().Any(),
        JsonValueKind.String => v.GetString()!.Length > 0,
        _ => true,
    };

    NotSupportedException Unsupported(string field, string why) => new($"{Source}: {field}: {why}");
    InvalidDataException Invalid(string field, string why) => new($"{Source}: {field}: {why}");

    public void Validate()
    {
        if (PeftType != "LORA") throw Unsupported("peft_type", $"'{PeftType}' adapters are not supported (only LORA)");
        if (R <= 0) throw Invalid("r", $"must be a positive integer, got {R}");
        if (FanInFanOut) throw Unsupported("fan_in_fan_out", "transposed (Conv1D-style) weights are not supported yet");
        if (Bias != "none") throw Unsupported("bias", $"'{Bias}' trains the base model's biases; not supported yet (only 'none')");
        if (LoraBias) throw Unsupported("lora_bias", "a bias on lora_B is not supported yet");
        if (ModulesToSave is { ValueKind: not (JsonValueKind.Null or JsonValueKind.Undefined) } mts
            && (mts.ValueKind != JsonValueKind.Array || mts.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String || e.GetString()!.Length == 0)))
            throw Invalid("modules_to_save", "expected a list of module names");
        if (IsSet(LayersToTransform)) throw Unsupported("layers_to_transform", "per-layer selection is not supported yet");
        if (IsSet(TargetParameters)) throw Unsupported("target_parameters", "LoRA on bare parameters is not supported yet");
        if (IsSet(LayerReplication)) throw Unsupported("layer_replication", "layer replication is not supported yet");
        if (IsSet(TrainableTokenIndices)) throw Unsupported("trainable_token_indices", "trainable tokens are not supported yet");
        if (TargetModules is not { ValueKind: JsonValueKind.String or JsonValueKind.Array })
            throw Invalid("target_modules", "missing; expected a list of module names, a regex string or \"all-linear\"");
        if (TargetModules.Value.ValueKind == JsonValueKind.Array && TargetModules.Value.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
            throw Invalid("target_modules", "list entries must be strings");
        if (ExcludeModules is { ValueKind: not (JsonValueKind.Null or JsonValueKind.String) } exm
            && !(exm.ValueKind == JsonValueKind.Array && exm.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String)))
            throw Invalid("exclude_modules", "expected a regex string or a list of module names");
        foreach (var (pattern, rank) in RankPattern ?? [])
            if (rank <= 0) throw Invalid($"rank_pattern.{pattern}", $"must be a positive integer, got {rank}");
        // Regexes are checked here, once, so a bad one names this file and field rather than failing mid-forward.
        var patterns = (RankPattern ?? []).Keys.Select(k => ("rank_pattern", k)).Concat((AlphaPattern ?? []).Keys.Select(k => ("alpha_pattern", k)));
        if (TargetModules.Value.ValueKind == JsonValueKind.String && TargetModules.Value.GetString() != LoraTargets.AllLinear)
            patterns = patterns.Append(("target_modules", TargetModules.Value.GetString()!));
        if (ExcludeModules is { ValueKind: JsonValueKind.String } ex) patterns = patterns.Append(("exclude_modules", ex.GetString()!));
        foreach (var (field, pattern) in patterns)
            if (LoraTargets.PatternError(field, pattern) is { } why) throw Invalid(field, why);
    }
}
