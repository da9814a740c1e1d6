using System.Text.Json;
using static Amalgam.Tokenizers.TokenizerJson;

namespace Amalgam.Tokenizers;

/// <summary>
/// The special tokens put around a single text when special tokens are added: tokenizer.json's post-processor
/// (TemplateProcessing's <c>single</c>; ByteLevel adds none), unless tokenizer_config.json has <c>add_bos_token</c> or
/// <c>add_eos_token</c>, which then decide, as transformers' Llama and Gemma tokenizers rebuild their template from them.
/// </summary>
internal sealed record SpecialTokenTemplate(IReadOnlyList<int> Prefix, IReadOnlyList<int> Suffix)
{
    public static readonly SpecialTokenTemplate Empty = new([], []);

    public IReadOnlyList<int> Wrap(IReadOnlyList<int> ids) => Prefix.Count + Suffix.Count == 0 ? ids : [.. Prefix, .. ids, .. Suffix];

    public static SpecialTokenTemplate FromPostProcessor(JsonElement root, string path)
    {
        if (!root.TryGetProperty("post_processor", out var pp) || pp.ValueKind == JsonValueKind.Null) return Empty;
        return Read(pp, "post_processor", path);
    }

    private static SpecialTokenTemplate Read(JsonElement pp, string at, string path)
    {
        var type = StringOrNull(pp, "type", path, at + ".");
        switch (type)
        {
            case "ByteLevel": return Empty; // offsets only
            case "Sequence":
                var list = Get(pp, "processors", path, at + ".");
                if (list.ValueKind != JsonValueKind.Array) throw Bad(path, $"{at}.processors must be an array");
                var result = Empty;
                int i = 0;
                foreach (var p in list.EnumerateArray())
                {
                    var t = Read(p, $"{at}.processors[{i++}]", path);
                    if (t.Prefix.Count + t.Suffix.Count > 0)
                    {
                        if (result.Prefix.Count + result.Suffix.Count > 0) throw Bad(path, $"{at} has two processors that add tokens");
                        result = t;
                    }
                }
                return result;
            case "TemplateProcessing":
                return ReadTemplate(pp, at, path);
            default:
                throw Bad(path, $"{at}.type \"{type}\" is not supported (only TemplateProcessing, ByteLevel and Sequence)");
        }
    }

    private static SpecialTokenTemplate ReadTemplate(JsonElement pp, string at, string path)
    {
        var single = Get(pp, "single", path, at + ".");
        if (single.ValueKind != JsonValueKind.Array) throw Bad(path, $"{at}.single must be an array");
        var specials = pp.TryGetProperty("special_tokens", out var s) && s.ValueKind == JsonValueKind.Object ? s : default;
        var prefix = new List<int>();
        var suffix = new List<int>();
        bool seenSequence = false;
        int i = 0;
        foreach (var item in single.EnumerateArray())
        {
            var itemAt = $"{at}.single[{i++}]";
            if (item.TryGetProperty("Sequence", out var seq))
            {
                if (seenSequence || StringOrNull(seq, "id", path, itemAt + ".Sequence.") != "A")
                    throw Bad(path, $"{itemAt}: a single-text template must contain sequence A once");
                seenSequence = true;
                continue;
            }
            if (!item.TryGetProperty("SpecialToken", out var st)) throw Bad(path, $"{itemAt} must be a Sequence or a SpecialToken");
            var name = StringOrNull(st, "id", path, itemAt + ".SpecialToken.") ?? throw Bad(path, $"{itemAt}.SpecialToken.id is missing");
            if (specials.ValueKind != JsonValueKind.Object || !specials.TryGetProperty(name, out var entry)
                || !entry.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
                throw Bad(path, $"{at}.special_tokens has no ids for \"{name}\"");
            foreach (var id in ids.EnumerateArray())
            {
                if (!id.TryGetInt32(out var v)) throw Bad(path, $"{at}.special_tokens[\"{name}\"].ids must be integers");
                (seenSequence ? suffix : prefix).Add(v);
            }
        }
        if (!seenSequence) throw Bad(path, $"{at}.single has no sequence A");
        return new SpecialTokenTemplate(prefix, suffix);
    }

    /// <summary>tokenizer_config.json's add_bos_token/add_eos_token override the template when either is present.</summary>
    public static SpecialTokenTemplate Resolve(SpecialTokenTemplate fromFile, string modelDir, int? bos, int? eos)
    {
        var file = Path.Combine(modelDir, "tokenizer_config.json");
        if (!File.Exists(file)) return fromFile;
        using var doc = TokenizerJson.Parse(file);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) return fromFile;
        bool hasBos = root.TryGetProperty("add_bos_token", out var b) && b.ValueKind != JsonValueKind.Null;
        bool hasEos = root.TryGetProperty("add_eos_token", out var e) && e.ValueKind != JsonValueKind.Null;
        if (!hasBos && !hasEos) return fromFile;
        // The one left out keeps what the file's template does.
        bool addBos = hasBos ? Bool(root, "add_bos_token", file) : fromFile.Prefix.Count > 0;
        bool addEos = hasEos ? Bool(root, "add_eos_token", file) : fromFile.Suffix.Count > 0;
        return new SpecialTokenTemplate(addBos && bos is int bi ? [bi] : [], addEos && eos is int ei ? [ei] : []);
    }
}
