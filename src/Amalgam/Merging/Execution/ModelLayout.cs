using System.Text.Json;
using System.Text.RegularExpressions;
using Amalgam.Models;

namespace Amalgam.Merging.Execution;

/// <summary>One stack of numbered layers, tensors named <c>{Head}{i}.{rest}</c>; its length from <see cref="CountField"/>.</summary>
public sealed record LayerStack(string Name, Regex Pattern, int Count, string CountField);

/// <summary>Where a tensor sits in a layer stack: the stack, the layer index, and the name around the index.</summary>
public sealed record LayerPosition(LayerStack Stack, int Index, string Head, string Rest);

/// <summary>
/// The layer stacks of a checkpoint's architecture, as mergekit's architecture definitions give them: what depth
/// gradients (t = i/(L−1) within each stack), <c>layer_range</c> and slices index. Amalgam's decoder families (and
/// a folder without config.json or without <c>architectures</c>) have one stack <c>model.layers.N.</c>; GPT-2
/// <c>h.N.</c> (<c>n_layer</c>); Qwen2-VL its language layers and its vision blocks (<c>vision_config.depth</c>);
/// Whisper its encoder and decoder layers; Florence-2 its language encoder and decoder layers; BERT and RoBERTa <c>encoder.layer.N.</c>. Any other architecture merges
/// tensor by tensor, with no stacks.
/// </summary>
public sealed class ModelLayout
{
    sealed record Family(string Label, Func<string, bool> Matches, (string Name, string Pattern, string[] CountFields)[] Stacks, string[] PreNames);

    const string DecoderLayers = @"^((?:.*?\.)?layers\.)(\d+)\.";

    static readonly Family Decoder = new("decoder", _ => true, [("layers", DecoderLayers, ["num_hidden_layers"])], []);

    static readonly Family[] Families =
    [
        new("GPT-2", a => a is "GPT2LMHeadModel" or "GPT2Model", [("h", @"^((?:transformer\.)?h\.)(\d+)\.", ["n_layer"])], ["wte.", "wpe."]),
        new("Qwen2-VL", a => a is "Qwen2VLForConditionalGeneration" or "Qwen2_5_VLForConditionalGeneration",
            [("language layers", @"^((?:model\.)?(?:language_model\.)?layers\.)(\d+)\.", ["num_hidden_layers", "text_config.num_hidden_layers"]),
             ("vision blocks", @"^((?:model\.)?visual\.blocks\.)(\d+)\.", ["vision_config.depth"])], []),
        new("Whisper", a => a == "WhisperForConditionalGeneration",
            [("encoder layers", @"^(model\.encoder\.layers\.)(\d+)\.", ["encoder_layers"]),
             ("decoder layers", @"^(model\.decoder\.layers\.)(\d+)\.", ["decoder_layers"])], []),
        // mergekit's florence.json: one layer index over the language model's encoder and decoder, counted by
        // text_config.num_hidden_layers for both.
        new("Florence-2", a => a == "Florence2ForConditionalGeneration",
            [("language encoder layers", @"^(language_model\.model\.encoder\.layers\.)(\d+)\.", ["text_config.num_hidden_layers"]),
             ("language decoder layers", @"^(language_model\.model\.decoder\.layers\.)(\d+)\.", ["text_config.num_hidden_layers"])], []),
        new("BERT", a => a.StartsWith("Bert", StringComparison.Ordinal) || a.StartsWith("Roberta", StringComparison.Ordinal),
            [("layer", @"^((?:.*?\.)?encoder\.layer\.)(\d+)\.", ["num_hidden_layers"])], []),
    ];

    private readonly Family? family;

    ModelLayout(string? architecture, Family? family, IReadOnlyList<LayerStack> stacks)
    {
        Architecture = architecture;
        this.family = family;
        Stacks = stacks;
    }

    /// <summary>config.json's first architecture, or null without one.</summary>
    public string? Architecture { get; }

    /// <summary>Whether Amalgam's decoder runs this architecture (an output it can load, generate with, evaluate).</summary>
    public bool Runs => Architecture is null || DecoderConfig.SupportedArchitectures.ContainsKey(Architecture);

    /// <summary>Whether the layer stacks are known (false: an architecture outside every family above).</summary>
    public bool KnowsStacks => family is not null;

    public IReadOnlyList<LayerStack> Stacks { get; }

    /// <summary>The layout of the folder's config.json over the tensor names of that checkpoint.</summary>
    public static ModelLayout Read(string folder, IReadOnlyCollection<string> names)
    {
        string config = Path.Combine(folder, "config.json");
        JsonDocument? doc = File.Exists(config) ? JsonDocument.Parse(File.ReadAllText(config)) : null;
        using (doc)
        {
            string? arch = doc is not null && doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("architectures", out var a)
                && a.ValueKind == JsonValueKind.Array && a.GetArrayLength() > 0 && a[0].ValueKind == JsonValueKind.String ? a[0].GetString() : null;
            Family? family = arch is null ? Decoder
                : Families.FirstOrDefault(f => f.Matches(arch)) ?? (DecoderConfig.SupportedArchitectures.ContainsKey(arch) ? Decoder : null);
            var stacks = family?.Stacks.Select(s => Stack(s.Name, new Regex(s.Pattern, RegexOptions.CultureInvariant), s.CountFields, doc?.RootElement, names)).ToList() ?? [];
            return new ModelLayout(arch, family, stacks);
        }
    }

    /// <summary>The decoder layout with <paramref name="layers"/> layers (library callers that know the count).</summary>
    public static ModelLayout DecoderOf(int layers) =>
        new(null, Decoder, [new LayerStack("layers", new Regex(DecoderLayers, RegexOptions.CultureInvariant), layers, "num_hidden_layers")]);

    /// <summary>The first count field present with a positive integer, else one more than the highest index seen.</summary>
    static LayerStack Stack(string name, Regex pattern, string[] fields, JsonElement? root, IReadOnlyCollection<string> names)
    {
        foreach (var field in fields)
            if (root is { } r && Field(r, field) is { ValueKind: JsonValueKind.Number } n && n.TryGetInt32(out int count) && count > 0)
                return new LayerStack(name, pattern, count, field);
        int max = names.Select(t => pattern.Match(t)).Where(m => m.Success).Select(m => int.Parse(m.Groups[2].Value)).DefaultIfEmpty(0).Max();
        return new LayerStack(name, pattern, max + 1, fields[0]);
    }

    static JsonElement? Field(JsonElement root, string dotted)
    {
        var e = root;
        foreach (var part in dotted.Split('.'))
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(part, out e)) return null;
        return e;
    }

    /// <summary>The stack and layer of a tensor, or null outside every stack.</summary>
    public LayerPosition? Locate(string tensorName)
    {
        foreach (var s in Stacks)
            if (s.Pattern.Match(tensorName) is { Success: true } m)
                return new LayerPosition(s, int.Parse(m.Groups[2].Value), m.Groups[1].Value, tensorName[m.Length..]);
        return null;
    }

    /// <summary>mergekit's depth: i/(L−1) within the tensor's stack (1 when L = 1), 0 outside the stacks.</summary>
    public double DepthOf(string tensorName) => Locate(tensorName) is { } p ? p.Stack.Count > 1 ? (double)p.Index / (p.Stack.Count - 1) : 1 : 0;

    /// <summary>A tensor before the layers (embeddings: GPT-2's wte and wpe too), which slices take from their first slice.</summary>
    public bool IsPre(string tensorName) =>
        tensorName.Contains("embed", StringComparison.Ordinal) || (family?.PreNames.Any(p => tensorName.StartsWith(p, StringComparison.Ordinal) || tensorName.Contains("." + p, StringComparison.Ordinal)) ?? false);

    /// <summary>What the console and the output README say when Amalgam merges an architecture it cannot run.</summary>
    public string? CannotRunNote => Runs ? null
        : $"architecture {Architecture}: Amalgam merges it but cannot run it (its decoder runs only {string.Join(", ", DecoderConfig.SupportedArchitectures.Keys)})"
          + (KnowsStacks ? "" : "; its layer stacks are unknown to Amalgam, so it was merged tensor by tensor");
}
