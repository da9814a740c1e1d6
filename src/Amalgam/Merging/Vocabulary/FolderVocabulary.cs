using System.Text.Json;
using System.Text.Json.Nodes;
using Amalgam.Tokenizers;

namespace Amalgam.Merging.Vocabulary;

/// <summary>An added token of a tokenizer.json (<c>added_tokens</c>): its content, id and the entry as written.</summary>
public sealed record AddedToken(string Content, int Id, JsonObject Entry);

/// <summary>
/// The vocabulary of one model folder as mergekit's tokenizer merge sees it (<c>get_vocab()</c>): token → id from
/// the file Amalgam's <see cref="TokenizerLoader"/> reads (tokenizer.amalgam.json, else tokenizer.json's model.vocab
/// plus added_tokens, else tokenizer.model), with ids at or above config.json's <c>vocab_size</c> dropped (mergekit's
/// <c>get_stripped_tokenizer</c>: tokens past the embedding rows).
/// </summary>
public sealed class FolderVocabulary
{
    public required string Folder { get; init; }
    /// <summary>The file the vocabulary came from (tokenizer.amalgam.json, tokenizer.json or tokenizer.model).</summary>
    public required string File { get; init; }
    public required IReadOnlyDictionary<string, int> Ids { get; init; }
    /// <summary>tokenizer.json's added tokens (id order); none for the other formats.</summary>
    public required IReadOnlyList<AddedToken> Added { get; init; }
    /// <summary>config.json's <c>vocab_size</c> (the embedding rows), when given.</summary>
    public int? RowLimit { get; init; }

    /// <summary>The folder's vocabulary, or null when it holds no tokenizer file.</summary>
    public static FolderVocabulary? Read(string folder)
    {
        int? limit = ConfigVocabSize(folder);
        string amalgam = Path.Combine(folder, AmalgamTokenizer.FileName), hf = Path.Combine(folder, HuggingFaceBpeTokenizer.FileName);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        void Add(string token, int id)
        {
            if (limit is { } l && id >= l) return;
            ids.TryAdd(token, id);
        }
        if (System.IO.File.Exists(amalgam))
        {
            var t = AmalgamTokenizer.Load(amalgam);
            for (int i = 0; i < t.Tokens.Count; i++) Add(t.Tokens[i], i);
            return new FolderVocabulary { Folder = folder, File = AmalgamTokenizer.FileName, Ids = ids, Added = [], RowLimit = limit };
        }
        if (System.IO.File.Exists(hf))
        {
            var root = JsonNode.Parse(Inputs.InputFiles.ReadTextInFolder(hf)) as JsonObject ?? throw new InvalidDataException($"{hf}: the top level must be a JSON object");
            if (root["model"]?["vocab"] is not JsonObject vocab) throw new InvalidDataException($"{hf}: model.vocab must be an object of token → id (only BPE-style vocabularies can be merged)");
            var added = new List<AddedToken>();
            if (root["added_tokens"] is JsonArray list)
                foreach (var e in list)
                {
                    if (e is not JsonObject o || o["content"]?.GetValue<string>() is not { Length: > 0 } content || o["id"] is not JsonValue idv || !idv.TryGetValue(out int id))
                        throw new InvalidDataException($"{hf}: added_tokens: every entry needs a content and an integer id");
                    if (limit is { } l && id >= l) continue;
                    added.Add(new AddedToken(content, id, (JsonObject)o.DeepClone()));
                }
            foreach (var (token, v) in vocab)
            {
                if (v is not JsonValue idv || !idv.TryGetValue(out int id) || id < 0) throw new InvalidDataException($"{hf}: model.vocab[{Inputs.Names.Escape(token)}]: expected a non-negative integer id");
                Add(token, id);
            }
            foreach (var a in added) { ids.Remove(a.Content); Add(a.Content, a.Id); } // an added token's id wins, as in get_vocab()
            return new FolderVocabulary { Folder = folder, File = HuggingFaceBpeTokenizer.FileName, Ids = ids, Added = added.OrderBy(a => a.Id).ToList(), RowLimit = limit };
        }
        if (System.IO.File.Exists(Path.Combine(folder, SentencePieceModelTokenizer.FileName)))
        {
            var t = TokenizerLoader.Load(folder);
            for (int i = 0; i < t.VocabSize; i++) if (t.IdToToken(i) is { } token) Add(token, i);
            return new FolderVocabulary { Folder = folder, File = SentencePieceModelTokenizer.FileName, Ids = ids, Added = [], RowLimit = limit };
        }
        return null;
    }

    /// <summary>Contents of the added tokens.</summary>
    public IReadOnlySet<string> AddedContents => added ??= Added.Select(a => a.Content).ToHashSet(StringComparer.Ordinal);
    private HashSet<string>? added;

    static int? ConfigVocabSize(string folder)
    {
        string config = Path.Combine(folder, "config.json");
        if (!System.IO.File.Exists(config)) return null;
        using var doc = JsonDocument.Parse(Inputs.InputFiles.ReadText(config));
        return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("vocab_size", out var v) && v.TryGetInt32(out int n) && n > 0 ? n : null;
    }
}
