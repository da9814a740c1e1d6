using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Amalgam.Tokenizers;

/// <summary>
/// A Hugging Face byte-level BPE <c>tokenizer.json</c> (GPT-2, Llama 3, Qwen2 style). The merges run in
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>; this class only adds the parts of the Hugging Face pipeline the
/// library lacks: added-token splitting, regex splitting that keeps unmatched text, NFC and <c>ignore_merges</c>.
/// </summary>
public sealed class HuggingFaceBpeTokenizer : ITextTokenizer
{
    public const string FileName = "tokenizer.json";

    private readonly BpeTokenizer _bpe;
    private readonly IReadOnlyDictionary<string, int> _vocab;
    private readonly Regex? _addedTokenPattern;
    private readonly IReadOnlyDictionary<string, int> _addedTokens;
    private readonly IReadOnlyList<Regex> _splits;
    private readonly bool _nfc;
    private readonly bool _ignoreMerges;
    private readonly bool _hasUnk;
    private readonly HashSet<int> _skipOnDecode;
    private readonly HashSet<int> _knownIds;
    private readonly HashSet<char> _byteSymbols;

    internal HuggingFaceBpeTokenizer(BpeTokenizer bpe, IReadOnlyDictionary<string, int> vocab,
        IReadOnlyDictionary<string, int> addedTokens, IEnumerable<int> specialAddedIds, IReadOnlyList<Regex> splits,
        bool nfc, bool ignoreMerges, bool hasUnk, (int? Bos, int? Eos, int? Pad) ids, string source)
    {
        _bpe = bpe;
        _vocab = vocab;
        _addedTokens = addedTokens;
        // Longest first so that "<|a|>x" wins over "<|a|>" when both are added tokens (leftmost-longest like HF).
        _addedTokenPattern = addedTokens.Count == 0 ? null : new Regex(
            string.Join("|", addedTokens.Keys.OrderByDescending(k => k.Length).Select(Regex.Escape)),
            RegexOptions.CultureInvariant);
        _splits = splits;
        _nfc = nfc;
        _ignoreMerges = ignoreMerges;
        _hasUnk = hasUnk;
        (BosId, EosId, PadId) = ids;
        _skipOnDecode = [.. specialAddedIds];
        foreach (var id in new[] { BosId, EosId, PadId })
            if (id is int i) _skipOnDecode.Add(i);
        _knownIds = [.. vocab.Values, .. addedTokens.Values];
        _byteSymbols = [.. vocab.Keys.Where(k => k.Length == 1).Select(k => k[0])];
        VocabSize = _knownIds.Max() + 1;
        Source = source;
    }

    public int? BosId { get; }
    public int? EosId { get; }
    public int? PadId { get; }
    public int VocabSize { get; }
    public string Source { get; }

    public static HuggingFaceBpeTokenizer Load(string path) => HuggingFaceTokenizerReader.Read(path);

    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        var ids = new List<int>();
        if (addBos && BosId is int bos) ids.Add(bos);
        if (_nfc) text = text.Normalize(NormalizationForm.FormC);

        foreach (var (segment, isAdded) in SplitAddedTokens(text))
        {
            if (isAdded) { ids.Add(_addedTokens[segment]); continue; }
            IEnumerable<string> pieces = [segment];
            foreach (var regex in _splits)
                pieces = pieces.SelectMany(p => SplitIsolated(p, regex)).ToList();
            foreach (var piece in pieces)
                EncodePiece(piece, ids);
        }
        return ids;
    }

    public string Decode(IEnumerable<int> ids)
    {
        var kept = new List<int>();
        foreach (var id in ids)
        {
            if (!_knownIds.Contains(id))
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"{Source}: token id is not in the vocabulary");
            if (!_skipOnDecode.Contains(id)) kept.Add(id);
        }
        // considerSpecialTokens: true so non-special added tokens still decode; special ones were dropped above.
        return _bpe.Decode(kept, considerSpecialTokens: true);
    }

    private void EncodePiece(string piece, List<int> ids)
    {
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
        ids.AddRange(_bpe.EncodeToIds(piece));
    }

    private IEnumerable<(string Text, bool IsAdded)> SplitAddedTokens(string text)
    {
        if (_addedTokenPattern is null) { if (text.Length > 0) yield return (text, false); yield break; }
        int at = 0;
        foreach (Match m in _addedTokenPattern.Matches(text))
        {
            if (m.Index > at) yield return (text[at..m.Index], false);
            yield return (m.Value, true);
            at = m.Index + m.Length;
        }
        if (at < text.Length) yield return (text[at..], false);
    }

    /// <summary>Hugging Face Split with behavior "Isolated": every match is a piece and so is the text between matches.</summary>
    private static IEnumerable<string> SplitIsolated(string text, Regex regex)
    {
        int at = 0;
        foreach (Match m in regex.Matches(text))
        {
            if (m.Length == 0) continue;
            if (m.Index > at) yield return text[at..m.Index];
            yield return m.Value;
            at = m.Index + m.Length;
        }
        if (at < text.Length) yield return text[at..];
    }
}
