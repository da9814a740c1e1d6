using System.Text.Json.Nodes;
using Amalgam.Merging.Execution;

namespace Amalgam.Merging.Vocabulary;

/// <summary>
/// The output vocabulary of a merge with <c>tokenizer_source</c> or a <c>tokenizer:</c> block, and where each input's
/// rows go in it — mergekit's <c>build_tokenizer</c> (mergekit/tokenizer/build.py):
/// <list type="bullet">
/// <item><c>base</c>: the base's vocabulary (the first model's without a base); <c>model:NAME</c>: that model's.</item>
/// <item><c>union</c>: the base's vocabulary with its ids, then every other model's tokens the base lacks, appended
/// as added tokens: first the ordinary tokens (models in recipe order, each in id order), then the added tokens
/// (first settings win). A token another model adds that the base has as an ordinary token stays at its id and
/// becomes an added token, as <c>add_tokens</c> does.</item>
/// <item>the block's <c>tokens:</c> are added when missing (ordinary, non-special added tokens).</item>
/// </list>
/// Each input's permutation maps an output id to its own row, or −1 where it lacks the token; a model with no
/// tokenizer file is taken to have the base's vocabulary (mergekit: "Assuming same as base"). Ids at or above a
/// model's config <c>vocab_size</c> are not tokens (<c>get_stripped_tokenizer</c>).
/// </summary>
public sealed class VocabularyPlan
{
    /// <summary>Output id → token (null for an id no token has).</summary>
    public required IReadOnlyList<string?> Tokens { get; init; }
    public int Size => Tokens.Count;
    /// <summary>Rows of the output embeddings: <see cref="Size"/> rounded up to <c>pad_to_multiple_of</c>.</summary>
    public required int Rows { get; init; }
    /// <summary>The vocabulary the output tokenizer files are made from (the base's for union).</summary>
    public required FolderVocabulary Output { get; init; }
    /// <summary>Entries to add to the output tokenizer's added tokens (new tokens, and tokens another model marks as added), id order.</summary>
    public required IReadOnlyList<AddedToken> Appended { get; init; }
    /// <summary>Output id → row of each input (−1: the input lacks the token).</summary>
    public required IReadOnlyDictionary<IMergeSource, int[]> Permutations { get; init; }
    /// <summary>mergekit's <c>base_model</c> of PermutedEmbeddings: a token it has takes its row as the default.</summary>
    internal IMergeSource? Base { get; init; }
    /// <summary>The <c>tokens:</c> entries by output id, their sources resolved.</summary>
    public required IReadOnlyDictionary<int, ResolvedToken> Explicit { get; init; }

    public sealed record ResolvedToken(string Token, TokenSetting Setting, IMergeSource? Source, int Row);

    /// <summary>
    /// The plan of <paramref name="inputs"/>'s recipe, or null when it has no tokenizer settings, or (not for union
    /// or a tokens block) when the tokenizer source has no vocabulary file: then the files are copied and the
    /// embeddings merged as stored, as before (said in <paramref name="notes"/>).
    /// </summary>
    public static VocabularyPlan? Build(MergeInputSet inputs, List<string> notes)
    {
        var recipe = inputs.Recipe;
        if (recipe.Tokenizer is not { } settings) return null;
        string field = settings.Block ? "tokenizer.source" : "tokenizer_source";
        var sources = new List<IMergeSource>();
        if (inputs.Base is not null) sources.Add(inputs.Base);
        foreach (var (_, s) in inputs.Models) if (!sources.Contains(s)) sources.Add(s);
        var cache = new Dictionary<string, FolderVocabulary?>(StringComparer.Ordinal);
        FolderVocabulary? VocabOf(IMergeSource s)
        {
            string folder = Folder(inputs, s);
            if (!cache.TryGetValue(folder, out var v)) cache[folder] = v = FolderVocabulary.Read(folder);
            return v;
        }
        var tokBase = sources[0];
        var baseVocab = VocabOf(tokBase);
        FolderVocabulary? output;
        if (settings.Model is { } wanted)
        {
            var chosen = Find(inputs, wanted) ?? throw new InvalidDataException($"{recipe.Source}: {field}: '{wanted}' is not one of the merge's models");
            output = VocabOf(chosen);
            if (output is null && !settings.Tokens.Any())
            {
                notes.Add($"{field}: {Folder(inputs, chosen)} has no vocabulary file (tokenizer.json, tokenizer.amalgam.json, tokenizer.model); its tokenizer files were copied and the embeddings merged as stored");
                return null;
            }
        }
        else output = baseVocab;
        if (output is null || baseVocab is null)
        {
            if (!settings.IsUnion && !settings.Tokens.Any() && baseVocab is null)
            {
                notes.Add($"{field}: {Folder(inputs, tokBase)} has no vocabulary file; its tokenizer files were copied and the embeddings merged as stored");
                return null;
            }
            throw new InvalidDataException($"{recipe.Source}: {field}: {Folder(inputs, output is null ? tokBase : tokBase)} has no vocabulary file (tokenizer.json, tokenizer.amalgam.json or tokenizer.model) to build the output vocabulary from");
        }

        var ids = new Dictionary<string, int>(output.Ids, StringComparer.Ordinal);
        var appended = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        int next = ids.Count == 0 ? 0 : ids.Values.Max() + 1;
        void AddNew(string token, JsonObject? entry)
        {
            if (ids.TryGetValue(token, out int existing))
            {
                // add_tokens on a token already in the vocabulary keeps its id and marks it added (unless it already is).
                if (entry is not null && !output.AddedContents.Contains(token) && !appended.ContainsKey(token)) appended[token] = Entry(token, existing, entry);
                return;
            }
            ids[token] = next;
            appended[token] = Entry(token, next, entry);
            next++;
        }
        if (settings.IsUnion)
        {
            var ordered = new List<FolderVocabulary> { baseVocab };
            foreach (var s in sources.Skip(1)) if (VocabOf(s) is { } v && !ordered.Contains(v)) ordered.Add(v);
            var normal = new List<string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var added = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
            foreach (var v in ordered)
            {
                foreach (var (token, _) in v.Ids.Where(kv => !v.AddedContents.Contains(kv.Key)).OrderBy(kv => kv.Value))
                    if (seen.Add(token)) normal.Add(token);
                foreach (var a in v.Added) added.TryAdd(a.Content, a); // "added with multiple different settings, using first"
            }
            foreach (var token in normal)
                if (!added.ContainsKey(token) && !baseVocab.Ids.ContainsKey(token)) AddNew(token, null);
            foreach (var a in added.Values) AddNew(a.Content, a.Entry);
        }
        foreach (var token in settings.Tokens.Keys) if (!ids.ContainsKey(token)) AddNew(token, null);

        int size = ids.Count == 0 ? 0 : ids.Values.Max() + 1;
        var tokens = new string?[size];
        foreach (var (t, id) in ids) tokens[id] = t;
        int rows = settings.PadToMultipleOf is { } m && size % m != 0 ? (size / m + 1) * m : size;

        var permutations = new Dictionary<IMergeSource, int[]>();
        foreach (var s in sources)
        {
            var v = VocabOf(s) ?? baseVocab;
            var p = new int[size];
            for (int i = 0; i < size; i++) p[i] = tokens[i] is { } t && v.Ids.TryGetValue(t, out int row) ? row : -1;
            permutations[s] = p;
        }

        var explicitTokens = new Dictionary<int, ResolvedToken>();
        foreach (var (token, setting) in settings.Tokens)
        {
            string at = $"{recipe.Source}: tokenizer.tokens[{Inputs.Names.Escape(token)}].source";
            int id = ids[token];
            ResolvedToken resolved;
            switch (setting.Source)
            {
                case ZeroSource:
                    resolved = new(token, setting, null, -1);
                    break;
                case ModelRowSource r:
                {
                    var s = Find(inputs, r.Model) ?? throw new InvalidDataException($"{at}: '{r.Model}' is not one of the merge's models");
                    int row = permutations[s][id];
                    if (row < 0) throw new InvalidDataException($"{at}: '{r.Model}' has no token {Inputs.Names.Escape(token)}");
                    resolved = new(token, setting, s, row);
                    break;
                }
                case ModelTokenSource mt:
                {
                    var s = Find(inputs, mt.Model) ?? throw new InvalidDataException($"{at}.model: '{mt.Model}' is not one of the merge's models");
                    int row;
                    if (mt.Token is { } other)
                        row = (VocabOf(s) ?? baseVocab).Ids.TryGetValue(other, out int r2) ? r2 : throw new InvalidDataException($"{at}.token: '{mt.Model}' has no token {Inputs.Names.Escape(other)}");
                    else row = mt.TokenId!.Value;
                    resolved = new(token, setting, s, row);
                    break;
                }
                default: throw new InvalidOperationException();
            }
            explicitTokens[id] = resolved;
        }

        var plan = new VocabularyPlan
        {
            Tokens = tokens, Rows = rows, Output = output, Permutations = permutations,
            Base = inputs.Base, Explicit = explicitTokens,
            Appended = appended.Values.OrderBy(a => a.Id).ToList(),
        };
        int newTokens = size - (output.Ids.Count == 0 ? 0 : output.Ids.Values.Max() + 1);
        notes.Add($"{(settings.Block ? "tokenizer" : "tokenizer_source")}: {settings.Source}: output vocabulary of {size} tokens ({Math.Max(newTokens, 0)} added to {Path.GetFileName(output.Folder.TrimEnd('/'))}'s {output.File}){(rows != size ? $", embeddings padded to {rows} rows" : "")}; embed_tokens and lm_head rows permuted into it before merging, as mergekit does");
        return plan;
    }

    /// <summary>The entry written to tokenizer.json's added_tokens: a copy of the model's own, or transformers' <c>add_tokens(str)</c> defaults.</summary>
    static AddedToken Entry(string token, int id, JsonObject? from)
    {
        var e = from is not null ? (JsonObject)from.DeepClone() : new JsonObject
        {
            ["content"] = token, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = true, ["special"] = false,
        };
        e.Remove("id");
        var withId = new JsonObject { ["id"] = id };
        foreach (var (k, v) in e) withId[k] = v?.DeepClone();
        return new AddedToken(token, id, withId);
    }

    /// <summary>The folder whose tokenizer describes an input's rows: a LoRA expert has its base's embeddings.</summary>
    static string Folder(MergeInputSet inputs, IMergeSource s) => s switch
    {
        LoraExpertSource => inputs.Base!.Path,
        ModelPlusLoraSource p => p.Model.Path,
        _ => s.Path,
    };

    /// <summary>A model named as in the recipe: its reference, its full path, or its folder name (the base included).</summary>
    internal static IMergeSource? Find(MergeInputSet inputs, string wanted)
    {
        string full = Path.GetFullPath(wanted);
        foreach (var (m, s) in inputs.Models)
            if (m.Reference == wanted || m.Path == full || Path.GetFileName(m.Path.TrimEnd('/')) == wanted) return s;
        if (inputs.Base is { } b && (b.Path == full || Path.GetFullPath(b.Path) == full || Path.GetFileName(b.Path.TrimEnd('/')) == wanted)) return b;
        return null;
    }
}
