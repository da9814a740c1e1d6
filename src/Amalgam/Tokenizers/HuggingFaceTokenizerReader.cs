using System.Text.Json;
using Microsoft.ML.Tokenizers;
using static Amalgam.Tokenizers.TokenizerJson;

namespace Amalgam.Tokenizers;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> and accepts it only when every stage can be reproduced exactly:
/// model BPE, either byte-level (pre-tokenizer ending in ByteLevel, ByteLevel decoder) or on characters with optional
/// byte fallback (SentencePiece conversions); the normalizers, pre-tokenizers, decoders and post-processors that
/// <see cref="TextNormalizer"/>, <see cref="PreTokenizerStep"/>, <see cref="TokenDecoder"/> and
/// <see cref="SpecialTokenTemplate"/> list. Everything else is refused with the offending field named.
/// </summary>
internal static class HuggingFaceTokenizerReader
{
    public static HuggingFaceBpeTokenizer Read(string path)
    {
        try { return ReadChecked(path); }
        catch (InvalidOperationException e) when (e.Message.Contains("UTF-16", StringComparison.Ordinal)) // System.Text.Json on "\ud800" alone
        {
            throw Bad(path, "a string holds a lone UTF-16 surrogate (an escape such as \\ud800 without its pair)", e);
        }
    }

    static HuggingFaceBpeTokenizer ReadChecked(string path)
    {
        using var doc = TokenizerJson.Parse(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw Bad(path, "the top level must be a JSON object");

        var model = Get(root, "model", path);
        if (model.ValueKind != JsonValueKind.Object) throw Bad(path, "model must be an object");
        CheckModelType(model, path);

        var vocab = ReadVocab(model, path);
        var merges = ReadMerges(model, path);
        var unk = StringOrNull(model, "unk_token", path, "model.");
        if (unk is not null && !vocab.ContainsKey(unk))
            throw Bad(path, $"model.unk_token \"{unk}\" is not in model.vocab");
        bool ignoreMerges = Bool(model, "ignore_merges", path, "model.");
        bool fuseUnk = Bool(model, "fuse_unk", path, "model.");
        bool byteFallback = Bool(model, "byte_fallback", path, "model.");

        var normalizer = TextNormalizer.Read(root, path);
        var (preTokenizer, byteLevel) = PreTokenizerStep.Read(root, path);
        var added = ReadAddedTokens(root, path);
        var template = SpecialTokenTemplate.FromPostProcessor(root, path);

        BpeTokenizer? byteLevelBpe = null;
        MergeBpe? mergeBpe = null;
        TokenDecoder? decoder = null;
        if (byteLevel)
        {
            if (byteFallback) throw Bad(path, "model.byte_fallback is true with a ByteLevel pre-tokenizer, which no known model uses");
            CheckByteLevelDecoder(root, path);
            var addedMap = added.GroupBy(a => a.Content).ToDictionary(g => g.Key, g => g.Last().Id);
            try
            {
                byteLevelBpe = BpeTokenizer.Create(new BpeOptions(vocab)
                {
                    Merges = merges.Select(m => $"{m.Left} {m.Right}"),
                    ByteLevel = true,
                    PreTokenizer = WholeTextPreTokenizer.Instance,
                    // Given to the library only so it can decode added tokens missing from model.vocab.
                    SpecialTokens = addedMap.Count > 0 ? addedMap : null,
                    UnknownToken = unk,
                    FuseUnknownTokens = fuseUnk,
                });
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
            {
                throw Bad(path, $"model.vocab/model.merges rejected by Microsoft.ML.Tokenizers: {e.Message}", e);
            }
        }
        else
        {
            mergeBpe = new MergeBpe(vocab, MergeTable(vocab, merges, path), unk is null ? null : vocab[unk], fuseUnk, byteFallback, ignoreMerges, path);
            decoder = TokenDecoder.Read(root, path);
        }

        int? Lookup(string token)
        {
            foreach (var a in added) if (a.Content == token) return a.Id;
            return vocab.TryGetValue(token, out var id) ? id : null;
        }
        var modelDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var ids = ModelSpecialTokens.Resolve(modelDir, Lookup, template.Prefix.Count > 0 ? template.Prefix[0] : null);
        template = SpecialTokenTemplate.Resolve(template, modelDir, ids.Bos, ids.Eos);

        return new HuggingFaceBpeTokenizer(byteLevelBpe, mergeBpe, decoder, vocab, added, normalizer, preTokenizer,
            ignoreMerges, unk is not null, ids, template, path);
    }

    private static void CheckModelType(JsonElement model, string path)
    {
        // Old files omit model.type; BPE is the only model with merges.
        var type = StringOrNull(model, "type", path, "model.") ?? (model.TryGetProperty("merges", out _) ? "BPE" : null);
        if (type != "BPE")
            throw Bad(path, $"model.type \"{type ?? "(missing)"}\" is not supported (only BPE can be loaded from {HuggingFaceBpeTokenizer.FileName})");
        if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind != JsonValueKind.Null
            && !(dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() == 0))
            throw Bad(path, "model.dropout is set; BPE dropout makes encoding random and is not supported");
        foreach (var field in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (!string.IsNullOrEmpty(StringOrNull(model, field, path, "model.")))
                throw Bad(path, $"model.{field} is set; only BPE without subword markers is supported");
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

    /// <summary>Merges in rank order; tokenizer.json has either "left right" strings or [left, right] pairs.</summary>
    private static List<(string Left, string Right)> ReadMerges(JsonElement model, string path)
    {
        var el = Get(model, "merges", path, "model.");
        if (el.ValueKind != JsonValueKind.Array) throw Bad(path, "model.merges must be an array");
        var merges = new List<(string, string)>(el.GetArrayLength());
        foreach (var m in el.EnumerateArray())
        {
            var at = $"model.merges[{merges.Count}]";
            if (m.ValueKind == JsonValueKind.String)
            {
                var parts = m.GetString()!.Split(' ');
                if (parts.Length != 2) throw Bad(path, $"{at} \"{m.GetString()}\" is not two tokens separated by one space");
                merges.Add((parts[0], parts[1]));
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
                     && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
                merges.Add((m[0].GetString()!, m[1].GetString()!));
            else throw Bad(path, $"{at} must be \"left right\" or [\"left\", \"right\"]");
        }
        return merges;
    }

    /// <summary>(left id, right id) to (rank, merged id), as tokenizers builds it: every part and result must be in the vocabulary.</summary>
    private static Dictionary<(int, int), (int Rank, int NewId)> MergeTable(Dictionary<string, int> vocab, List<(string Left, string Right)> merges, string path)
    {
        var table = new Dictionary<(int, int), (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocab.TryGetValue(left, out var a) || !vocab.TryGetValue(right, out var b) || !vocab.TryGetValue(left + right, out var merged))
                throw Bad(path, $"model.merges[{rank}] (\"{left}\", \"{right}\") uses a token that is not in model.vocab");
            table.TryAdd((a, b), (rank, merged));
        }
        return table;
    }

    private static void CheckByteLevelDecoder(JsonElement root, string path)
    {
        var decoder = root.TryGetProperty("decoder", out var d) && d.ValueKind == JsonValueKind.Object ? d : default;
        var type = decoder.ValueKind == JsonValueKind.Object ? StringOrNull(decoder, "type", path, "decoder.") : null;
        if (type != "ByteLevel")
            throw Bad(path, $"decoder.type \"{type ?? "(missing)"}\" is not supported with a ByteLevel pre-tokenizer (only ByteLevel)");
    }

    private static List<(string Content, int Id, bool Special, bool Normalized)> ReadAddedTokens(JsonElement root, string path)
    {
        var all = new List<(string, int, bool, bool)>();
        if (!root.TryGetProperty("added_tokens", out var list) || list.ValueKind == JsonValueKind.Null) return all;
        if (list.ValueKind != JsonValueKind.Array) throw Bad(path, "added_tokens must be an array");
        int i = 0;
        foreach (var t in list.EnumerateArray())
        {
            var at = $"added_tokens[{i++}]";
            if (t.ValueKind != JsonValueKind.Object) throw Bad(path, $"{at} must be an object");
            var content = StringOrNull(t, "content", path, at + ".");
            if (string.IsNullOrEmpty(content)) throw Bad(path, $"{at}.content is missing or empty");
            if (!t.TryGetProperty("id", out var idEl) || !idEl.TryGetInt32(out var id) || id < 0)
                throw Bad(path, $"{at}.id is missing or not a non-negative integer");
            // These change how the token is matched in text; none of the models we target use them.
            foreach (var flag in new[] { "lstrip", "rstrip", "single_word" })
                if (Bool(t, flag, path, at + ".")) throw Bad(path, $"{at}.{flag} is true, which is not supported");
            // HF's default for "normalized" is the opposite of "special".
            bool special = Bool(t, "special", path, at + ".");
            bool normalized = t.TryGetProperty("normalized", out var n) && n.ValueKind != JsonValueKind.Null ? Bool(t, "normalized", path, at + ".") : !special;
            all.Add((content, id, special, normalized));
        }
        return all;
    }
}
