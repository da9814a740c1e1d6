using Microsoft.ML.Tokenizers;

namespace Amalgam.Tokenizers;

/// <summary>
/// A SentencePiece <c>tokenizer.model</c> (protobuf), used when a model folder has no tokenizer.json. The model
/// (BPE or Unigram, byte fallback, add_dummy_prefix, whitespace escaping) runs in Microsoft.ML.Tokenizers'
/// <see cref="SentencePieceTokenizer"/>, which reads the protobuf itself and matches the sentencepiece library.
/// As in sentencepiece, text such as "&lt;s&gt;" is plain text, never a control token.
/// </summary>
public sealed class SentencePieceModelTokenizer : ITextTokenizer
{
    public const string FileName = "tokenizer.model";

    private readonly SentencePieceTokenizer _sp;
    private readonly Dictionary<int, string> _tokenOf;
    private readonly bool _addBos, _addEos;

    private SentencePieceModelTokenizer(SentencePieceTokenizer sp, (int? Bos, int? Eos, int? Pad) ids, bool addBos, bool addEos, string source)
    {
        _sp = sp;
        _tokenOf = sp.Vocabulary.ToDictionary(kv => kv.Value, kv => kv.Key);
        (BosId, EosId, PadId) = ids;
        _addBos = addBos;
        _addEos = addEos;
        VocabSize = _tokenOf.Keys.Max() + 1;
        Source = source;
    }

    public int? BosId { get; }
    public int? EosId { get; }
    public int? PadId { get; }
    public int VocabSize { get; }
    public string Source { get; }

    public static SentencePieceModelTokenizer Load(string path)
    {
        SentencePieceTokenizer sp;
        try
        {
            using var stream = Inputs.InputFiles.OpenInFolder(path);
            sp = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or NotSupportedException
                                      or IOException and not FileNotFoundException)
        {
            throw new InvalidDataException($"{path}: not a SentencePiece model Microsoft.ML.Tokenizers can read ({e.Message})", e);
        }
        var modelDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        int? Lookup(string token) => sp.Vocabulary.TryGetValue(token, out var id) ? id : null;
        int? spBos = sp.BeginningOfSentenceId >= 0 ? sp.BeginningOfSentenceId : null;
        var ids = ModelSpecialTokens.Resolve(modelDir, Lookup, spBos);
        // sentencepiece's own default (and transformers' LlamaTokenizer's): BOS yes, EOS no; tokenizer_config.json may say otherwise.
        var template = SpecialTokenTemplate.Resolve(new SpecialTokenTemplate(ids.Bos is int b ? [b] : [], []), modelDir, ids.Bos, ids.Eos);
        return new SentencePieceModelTokenizer(sp, ids, template.Prefix.Count > 0, template.Suffix.Count > 0, path);
    }

    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        var ids = new List<int>();
        if (addBos && BosId is int bos) ids.Add(bos);
        ids.AddRange(_sp.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false));
        return ids;
    }

    public IReadOnlyList<int> EncodeWithSpecialTokens(string text)
    {
        var ids = (List<int>)Encode(text, _addBos);
        if (_addEos && EosId is int eos) ids.Add(eos);
        return ids;
    }

    public string? IdToToken(int id) => _tokenOf.GetValueOrDefault(id);

    public string Decode(IEnumerable<int> ids) => Decode(ids, skipSpecialTokens: true);

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        var list = ids.ToList();
        foreach (var id in list)
            if (!_tokenOf.ContainsKey(id))
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"{Source}: token id is not in the vocabulary");
        return _sp.Decode(list, considerSpecialTokens: !skipSpecialTokens);
    }
}
