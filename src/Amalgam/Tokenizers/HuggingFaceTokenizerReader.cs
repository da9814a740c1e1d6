using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Amalgam.Tokenizers;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> and accepts it only when every stage can be reproduced exactly:
/// model BPE without byte fallback, byte-level pre-tokenizer (optionally after regex Splits), byte-level decoder,
/// no normalizer or NFC. Everything else is refused with the offending field named.
/// </summary>
internal static class HuggingFaceTokenizerReader
{
    // GPT-2's pre-tokenization regex, which the ByteLevel pre-tokenizer applies when use_regex is true.
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public static HuggingFaceBpeTokenizer Read(string path)
    {
        using var doc = ParseJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw Bad(path, "the top level must be a JSON object");

        var model = Get(root, "model", path);
        if (model.ValueKind != JsonValueKind.Object) throw Bad(path, "model must be an object");
        CheckModelType(model, path);

        var vocab = ReadVocab(model, path);
        var merges = ReadMerges(model, path);
        var unk = StringOrNull(model, "unk_token", path);
        if (unk is not null && !vocab.ContainsKey(unk))
            throw Bad(path, $"model.unk_token \"{unk}\" is not in model.vocab");
        bool ignoreMerges = Bool(model, "ignore_merges", path);
        bool fuseUnk = Bool(model, "fuse_unk", path);

        bool nfc = ReadNormalizer(root, path);
        var splits = ReadPreTokenizer(root, path);
        CheckDecoder(root, path);
        var (added, specialAdded) = ReadAddedTokens(root, path);

        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(new BpeOptions(vocab)
            {
                Merges = merges,
                ByteLevel = true,
                PreTokenizer = WholeTextPreTokenizer.Instance,
                // Given to the library only so it can decode added tokens missing from model.vocab.
                SpecialTokens = added.Count > 0 ? added : null,
                UnknownToken = unk,
                FuseUnknownTokens = fuseUnk,
            });
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw Bad(path, $"model.vocab/model.merges rejected by Microsoft.ML.Tokenizers: {e.Message}", e);
        }

        int? Lookup(string token) => added.TryGetValue(token, out var id) ? id : vocab.TryGetValue(token, out id) ? id : null;
        var ids = ModelSpecialTokens.Resolve(Path.GetDirectoryName(Path.GetFullPath(path))!, Lookup, TemplateBos(root, Lookup));

        return new HuggingFaceBpeTokenizer(bpe, vocab, added, specialAdded, splits, nfc, ignoreMerges, unk is not null, ids, path);
    }

    private static void CheckModelType(JsonElement model, string path)
    {
        // Old files omit model.type; BPE is the only model with merges.
        var type = StringOrNull(model, "type", path) ?? (model.TryGetProperty("merges", out _) ? "BPE" : null);
        if (type != "BPE")
            throw Bad(path, $"model.type \"{type ?? "(missing)"}\" is not supported (only byte-level BPE can be loaded from {HuggingFaceBpeTokenizer.FileName})");
        if (Bool(model, "byte_fallback", path))
            throw Bad(path, "model.byte_fallback is true (SentencePiece-style BPE, e.g. Llama 2): Microsoft.ML.Tokenizers 2.0.1 has no byte fallback for BPE from tokenizer.json and builds SentencePiece tokenizers only from a tokenizer.model protobuf");
        if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind != JsonValueKind.Null
            && !(dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() == 0))
            throw Bad(path, "model.dropout is set; BPE dropout makes encoding random and is not supported");
        foreach (var field in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (!string.IsNullOrEmpty(StringOrNull(model, field, path)))
                throw Bad(path, $"model.{field} is set; only byte-level BPE without subword markers is supported");
    }

    private static Dictionary<string, int> ReadVocab(JsonElement model, string path)
    {
        var el = Get(model, "vocab", path, "model.");
        if (el.ValueKind != JsonValueKind.Object) throw Bad(path, "model.vocab must be an object of token: id");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in el.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out var id) || id < 0)
                throw Bad(path, $"model.vocab[\"{p.Name}\"] is not a non-negative integer id");
            vocab[p.Name] = id;
        }
        if (vocab.Count == 0) throw Bad(path, "model.vocab is empty");
        return vocab;
    }

    /// <summary>Merges as the library wants them, "left right"; tokenizer.json has either that or [left, right] pairs.</summary>
    private static List<string> ReadMerges(JsonElement model, string path)
    {
        var el = Get(model, "merges", path, "model.");
        if (el.ValueKind != JsonValueKind.Array) throw Bad(path, "model.merges must be an array");
        var merges = new List<string>(el.GetArrayLength());
        foreach (var m in el.EnumerateArray())
        {
            var at = $"model.merges[{merges.Count}]";
            if (m.ValueKind == JsonValueKind.String)
            {
                var s = m.GetString()!;
                if (s.Split(' ').Length != 2) throw Bad(path, $"{at} \"{s}\" is not two tokens separated by one space");
                merges.Add(s);
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
                     && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
            {
                string left = m[0].GetString()!, right = m[1].GetString()!;
                if (left.Contains(' ') || right.Contains(' '))
                    throw Bad(path, $"{at} has a token containing a space, which the library's \"left right\" merge format cannot express");
                merges.Add($"{left} {right}");
            }
            else throw Bad(path, $"{at} must be \"left right\" or [\"left\", \"right\"]");
        }
        return merges;
    }

    /// <summary>True for NFC; false for none. Anything else would change the text in ways we do not reproduce.</summary>
    private static bool ReadNormalizer(JsonElement root, string path)
    {
        if (!root.TryGetProperty("normalizer", out var n) || n.ValueKind == JsonValueKind.Null) return false;
        var type = StringOrNull(n, "type", path);
        if (type == "NFC") return true;
        if (type == "Sequence" && n.TryGetProperty("normalizers", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            var types = list.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Object ? StringOrNull(x, "type", path) : null).ToList();
            if (types.Count == 0) return false;
            if (types is ["NFC"]) return true;
            throw Bad(path, $"normalizer.normalizers has types [{string.Join(", ", types)}]; only none or NFC is supported");
        }
        throw Bad(path, $"normalizer.type \"{type}\" is not supported (only none or NFC)");
    }

    /// <summary>The regexes to split with, in order. Accepts ByteLevel, or a Sequence of Splits ending in ByteLevel.</summary>
    private static List<Regex> ReadPreTokenizer(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind == JsonValueKind.Null)
            throw Bad(path, "pre_tokenizer is missing; only byte-level BPE (pre_tokenizer ByteLevel) is supported");
        var type = StringOrNull(pre, "type", path);
        var splits = new List<Regex>();
        if (type == "ByteLevel")
        {
            AddByteLevel(pre, "pre_tokenizer", splits, path);
            return splits;
        }
        if (type != "Sequence")
            throw Bad(path, $"pre_tokenizer.type \"{type}\" is not supported (only ByteLevel, or Sequence of Split then ByteLevel)");

        var items = Get(pre, "pretokenizers", path, "pre_tokenizer.");
        int count = items.ValueKind == JsonValueKind.Array ? items.GetArrayLength() : 0;
        if (count == 0) throw Bad(path, "pre_tokenizer.pretokenizers must be a non-empty array");
        for (int i = 0; i < count; i++)
        {
            var item = items[i];
            var at = $"pre_tokenizer.pretokenizers[{i}]";
            var itemType = StringOrNull(item, "type", path);
            if (itemType == "ByteLevel" && i == count - 1) AddByteLevel(item, at, splits, path);
            else if (itemType == "Split") splits.Add(ReadSplit(item, at, path));
            else throw Bad(path, $"{at}.type \"{itemType}\" is not supported (expected Split entries followed by one ByteLevel)");
        }
        return splits;
    }

    private static void AddByteLevel(JsonElement byteLevel, string at, List<Regex> splits, string path)
    {
        // add_prefix_space would insert a space the original text does not have; RoBERTa-style files use it.
        if (Bool(byteLevel, "add_prefix_space", path))
            throw Bad(path, $"{at}.add_prefix_space is true, which is not supported");
        bool useRegex = !byteLevel.TryGetProperty("use_regex", out var u) || u.ValueKind != JsonValueKind.False;
        if (useRegex) splits.Add(new Regex(Gpt2Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant));
    }

    private static Regex ReadSplit(JsonElement split, string at, string path)
    {
        var behavior = StringOrNull(split, "behavior", path);
        if (behavior != "Isolated") throw Bad(path, $"{at}.behavior \"{behavior}\" is not supported (only Isolated)");
        if (Bool(split, "invert", path)) throw Bad(path, $"{at}.invert is true, which is not supported");
        var pattern = Get(split, "pattern", path, at + ".");
        string regex;
        if (pattern.ValueKind == JsonValueKind.Object && pattern.TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String)
            regex = r.GetString()!;
        else if (pattern.ValueKind == JsonValueKind.Object && pattern.TryGetProperty("String", out var s) && s.ValueKind == JsonValueKind.String)
            regex = Regex.Escape(s.GetString()!);
        else throw Bad(path, $"{at}.pattern must be {{\"Regex\": ...}} or {{\"String\": ...}}");
        try
        {
            return new Regex(regex, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw Bad(path, $"{at}.pattern is not a .NET regular expression: {e.Message}", e);
        }
    }

    private static void CheckDecoder(JsonElement root, string path)
    {
        var decoder = root.TryGetProperty("decoder", out var d) && d.ValueKind == JsonValueKind.Object ? d : default;
        var type = decoder.ValueKind == JsonValueKind.Object ? StringOrNull(decoder, "type", path) : null;
        if (type != "ByteLevel")
            throw Bad(path, $"decoder.type \"{type ?? "(missing)"}\" is not supported (only ByteLevel)");
    }

    private static (Dictionary<string, int> All, List<int> SpecialIds) ReadAddedTokens(JsonElement root, string path)
    {
        var all = new Dictionary<string, int>(StringComparer.Ordinal);
        var special = new List<int>();
        if (!root.TryGetProperty("added_tokens", out var list) || list.ValueKind == JsonValueKind.Null) return (all, special);
        if (list.ValueKind != JsonValueKind.Array) throw Bad(path, "added_tokens must be an array");
        int i = 0;
        foreach (var t in list.EnumerateArray())
        {
            var at = $"added_tokens[{i++}]";
            if (t.ValueKind != JsonValueKind.Object) throw Bad(path, $"{at} must be an object");
            var content = StringOrNull(t, "content", path);
            if (string.IsNullOrEmpty(content)) throw Bad(path, $"{at}.content is missing or empty");
            if (!t.TryGetProperty("id", out var idEl) || !idEl.TryGetInt32(out var id) || id < 0)
                throw Bad(path, $"{at}.id is missing or not a non-negative integer");
            // These change how the token is matched in text; none of the models we target use them.
            foreach (var flag in new[] { "lstrip", "rstrip", "single_word" })
                if (Bool(t, flag, path)) throw Bad(path, $"{at}.{flag} is true, which is not supported");
            all[content] = id;
            if (Bool(t, "special", path)) special.Add(id);
        }
        return (all, special);
    }

    /// <summary>The special token a TemplateProcessing post-processor puts before the text, if any (e.g. Llama 3's BOS).</summary>
    private static int? TemplateBos(JsonElement root, Func<string, int?> lookup)
    {
        if (!root.TryGetProperty("post_processor", out var pp) || pp.ValueKind != JsonValueKind.Object) return null;
        var candidates = new List<JsonElement> { pp };
        if (pp.TryGetProperty("processors", out var procs) && procs.ValueKind == JsonValueKind.Array)
            candidates.AddRange(procs.EnumerateArray());
        foreach (var p in candidates)
        {
            if (p.ValueKind != JsonValueKind.Object || !p.TryGetProperty("type", out var t) || t.GetString() != "TemplateProcessing") continue;
            if (p.TryGetProperty("single", out var single) && single.ValueKind == JsonValueKind.Array && single.GetArrayLength() > 0
                && single[0].ValueKind == JsonValueKind.Object && single[0].TryGetProperty("SpecialToken", out var st)
                && st.TryGetProperty("id", out var name) && name.ValueKind == JsonValueKind.String)
                return lookup(name.GetString()!);
        }
        return null;
    }

    private static JsonDocument ParseJson(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream);
        }
        catch (JsonException e)
        {
            throw Bad(path, $"not valid JSON ({e.Message})", e);
        }
    }

    private static JsonElement Get(JsonElement obj, string field, string path, string prefix = "")
    {
        if (!obj.TryGetProperty(field, out var el) || el.ValueKind == JsonValueKind.Null)
            throw Bad(path, $"{prefix}{field} is missing");
        return el;
    }

    private static string? StringOrNull(JsonElement obj, string field, string path)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(field, out var el) || el.ValueKind == JsonValueKind.Null) return null;
        if (el.ValueKind != JsonValueKind.String) throw Bad(path, $"{field} must be a string");
        return el.GetString();
    }

    private static bool Bool(JsonElement obj, string field, string path)
    {
        if (!obj.TryGetProperty(field, out var el) || el.ValueKind == JsonValueKind.Null) return false;
        return el.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad(path, $"{field} must be true or false"),
        };
    }

    private static InvalidDataException Bad(string path, string message, Exception? inner = null) => new($"{path}: {message}", inner);
}
