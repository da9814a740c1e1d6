using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Amalgam.Tokenizers;

/// <summary>
/// A Hugging Face BPE <c>tokenizer.json</c>, run through the same stages as Hugging Face's tokenizers: added tokens
/// cut out of the raw text, the normalizer on each stretch between them, the pre-tokenizer, then the model. Two model
/// kinds: byte-level BPE (GPT-2, Llama 3, Qwen), whose merges run in Microsoft.ML.Tokenizers'
/// <see cref="BpeTokenizer"/>, and SentencePiece-style BPE on characters with byte fallback (Llama 2, Mistral,
/// Gemma), which <see cref="MergeBpe"/> runs because the library has no byte fallback.
/// </summary>
public sealed class HuggingFaceBpeTokenizer : ITextTokenizer
{
    public const string FileName = "tokenizer.json";

    private readonly BpeTokenizer? _byteLevelBpe;
    private readonly MergeBpe? _mergeBpe;
    private readonly TokenDecoder? _decoder;
    private readonly IReadOnlyDictionary<string, int> _vocab;
    private readonly Regex? _rawAddedPattern, _normalizedAddedPattern;
    private readonly IReadOnlyDictionary<string, int> _addedTokens;
    private readonly TextNormalizer _normalizer;
    private readonly IReadOnlyList<PreTokenizerStep> _preTokenizer;
    private readonly bool _ignoreMerges;
    private readonly bool _hasUnk;
    private readonly HashSet<int> _specialAdded;
    private readonly HashSet<int> _skipOnDecode;
    private readonly Dictionary<int, string> _tokenOf;
    private readonly HashSet<char> _byteSymbols;
    private readonly SpecialTokenTemplate _template;

    internal HuggingFaceBpeTokenizer(BpeTokenizer? byteLevelBpe, MergeBpe? mergeBpe, TokenDecoder? decoder,
        IReadOnlyDictionary<string, int> vocab, IReadOnlyList<(string Content, int Id, bool Special, bool Normalized)> added,
        TextNormalizer normalizer, IReadOnlyList<PreTokenizerStep> preTokenizer, bool ignoreMerges, bool hasUnk,
        (int? Bos, int? Eos, int? Pad) ids, SpecialTokenTemplate template, string source)
    {
        _byteLevelBpe = byteLevelBpe;
        _mergeBpe = mergeBpe;
        _decoder = decoder;
        _vocab = vocab;
        _addedTokens = added.GroupBy(a => a.Content).ToDictionary(g => g.Key, g => g.Last().Id, StringComparer.Ordinal);
        // Without a normalizer the two kinds are matched alike, on the raw text (as before).
        _rawAddedPattern = AlternationOf(added.Where(a => !a.Normalized || normalizer.IsIdentity).Select(a => a.Content));
        _normalizedAddedPattern = normalizer.IsIdentity ? null : AlternationOf(added.Where(a => a.Normalized).Select(a => a.Content));
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _ignoreMerges = ignoreMerges;
        _hasUnk = hasUnk;
        (BosId, EosId, PadId) = ids;
        _specialAdded = [.. added.Where(a => a.Special).Select(a => a.Id)];
        _skipOnDecode = [.. _specialAdded];
        foreach (var id in new[] { BosId, EosId, PadId })
            if (id is int i) _skipOnDecode.Add(i);
        _tokenOf = new Dictionary<int, string>(vocab.Count + added.Count);
        foreach (var (token, id) in vocab) _tokenOf[id] = token;
        foreach (var a in added) _tokenOf[a.Id] = a.Content;
        _byteSymbols = [.. vocab.Keys.Where(k => k.Length == 1).Select(k => k[0])];
        VocabSize = _tokenOf.Keys.Max() + 1;
        _template = template;
        Source = source;
    }

    public int? BosId { get; }
    public int? EosId { get; }
    public int? PadId { get; }
    public int VocabSize { get; }
    public string Source { get; }

    /// <summary>True for SentencePiece-style BPE (characters with byte fallback), false for byte-level BPE.</summary>
    public bool IsSentencePieceStyle => _mergeBpe is not null;

    public static HuggingFaceBpeTokenizer Load(string path) => HuggingFaceTokenizerReader.Read(path);

    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        var ids = new List<int>();
        if (addBos && BosId is int bos) ids.Add(bos);
        EncodeInto(text, ids);
        return ids;
    }

    public IReadOnlyList<int> EncodeWithSpecialTokens(string text)
    {
        var ids = new List<int>();
        EncodeInto(text, ids);
        return _template.Wrap(ids);
    }

    public string? IdToToken(int id) => _tokenOf.GetValueOrDefault(id);

    public string Decode(IEnumerable<int> ids) => Decode(ids, skipSpecialTokens: true);

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        var kept = new List<int>();
        foreach (var id in ids)
        {
            if (!_tokenOf.ContainsKey(id))
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"{Source}: token id is not in the vocabulary");
            if (!skipSpecialTokens || !_skipOnDecode.Contains(id)) kept.Add(id);
        }
        if (_decoder is not null) return _decoder.Decode(kept.ConvertAll(id => _tokenOf[id]));
        // considerSpecialTokens: true so added tokens still decode; skipped ones were dropped above.
        return _byteLevelBpe!.Decode(kept, considerSpecialTokens: true);
    }

    private void EncodeInto(string text, List<int> ids)
    {
        bool first = true;
        foreach (var (segment, start, isAdded) in SplitOn(_rawAddedPattern, text))
        {
            if (isAdded) { ids.Add(_addedTokens[segment]); continue; }
            var normalized = _normalizer.Apply(segment);
            foreach (var (part, partStart, partIsAdded) in SplitOn(_normalizedAddedPattern, normalized))
            {
                if (partIsAdded) { ids.Add(_addedTokens[part]); continue; }
                List<Piece> pieces = [new Piece(part, start == 0 && partStart == 0 && first)];
                foreach (var step in _preTokenizer)
                {
                    var next = new List<Piece>(pieces.Count);
                    foreach (var p in pieces) step.Split(p, next);
                    pieces = next;
                }
                foreach (var piece in pieces) EncodePiece(piece.Text, ids);
            }
            first = false;
        }
    }

    private void EncodePiece(string piece, List<int> ids)
    {
        if (_mergeBpe is not null) { _mergeBpe.Encode(piece, ids); return; }
        var spelled = ByteLevelAlphabet.Encode(piece);
        // ignore_merges (Llama 3): a piece that is itself a vocabulary entry is taken whole, even when no merge path reaches it.
        if (_ignoreMerges && _vocab.TryGetValue(spelled, out var whole)) { ids.Add(whole); return; }
        if (!_hasUnk)
        {
            // Without an unk token the library silently drops bytes it has no symbol for; fail loudly instead.
            foreach (var symbol in spelled)
                if (!_byteSymbols.Contains(symbol))
                    throw new ArgumentException(
                        $"{Source}: the vocabulary has no byte symbol \"{symbol}\" needed for \"{piece}\" and model.unk_token is null");
        }
        ids.AddRange(_byteLevelBpe!.EncodeToIds(piece));
    }

    /// <summary>Longest first so that "&lt;|a|&gt;x" wins over "&lt;|a|&gt;" (leftmost-longest like Hugging Face).</summary>
    private static Regex? AlternationOf(IEnumerable<string> tokens)
    {
        var list = tokens.Distinct().OrderByDescending(k => k.Length).ToList();
        return list.Count == 0 ? null : new Regex(string.Join("|", list.Select(Regex.Escape)), RegexOptions.CultureInvariant);
    }

    private static IEnumerable<(string Text, int Start, bool IsAdded)> SplitOn(Regex? pattern, string text)
    {
        if (pattern is null) { if (text.Length > 0) yield return (text, 0, false); yield break; }
        int at = 0;
        foreach (Match m in pattern.Matches(text))
        {
            if (m.Index > at) yield return (text[at..m.Index], at, false);
            yield return (m.Value, m.Index, true);
            at = m.Index + m.Length;
        }
        if (at < text.Length) yield return (text[at..], at, false);
    }
}
