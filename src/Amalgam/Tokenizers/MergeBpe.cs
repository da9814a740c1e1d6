using System.Text;

namespace Amalgam.Tokenizers;

/// <summary>
/// Hugging Face's BPE model on characters, as SentencePiece-converted tokenizer.json files use it (Llama 2, Mistral,
/// Gemma): each character is a symbol (or, with <c>byte_fallback</c>, its UTF-8 bytes as <c>&lt;0xNN&gt;</c> tokens when
/// the character is not in the vocabulary), then the adjacent pair with the lowest merge rank is merged, leftmost
/// first on ties, until no listed pair remains. Microsoft.ML.Tokenizers' BpeTokenizer has no byte fallback, so this
/// loop is ours; it follows tokenizers' <c>Word::merge_all</c> (a priority queue over pair positions).
/// </summary>
internal sealed class MergeBpe
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabBySpan;
    private readonly Dictionary<(int, int), (int Rank, int NewId)> _merges;
    private readonly int? _unk;
    private readonly bool _fuseUnk, _byteFallback, _ignoreMerges;
    private readonly int[] _byteIds = new int[256];
    private readonly string _source;

    public MergeBpe(Dictionary<string, int> vocab, Dictionary<(int, int), (int Rank, int NewId)> merges, int? unk,
        bool fuseUnk, bool byteFallback, bool ignoreMerges, string source)
    {
        _vocab = vocab;
        _vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _merges = merges;
        _unk = unk;
        _fuseUnk = fuseUnk;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _source = source;
        for (int b = 0; b < 256; b++) _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
    }

    public void Encode(string piece, List<int> ids)
    {
        if (_ignoreMerges && _vocab.TryGetValue(piece, out var whole)) { ids.Add(whole); return; }

        var symbols = new List<int>(piece.Length);
        bool lastWasUnk = false;
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < piece.Length;)
        {
            int len = char.IsSurrogatePair(piece, i) ? 2 : 1;
            var ch = piece.AsSpan(i, len);
            i += len;
            if (_vocabBySpan.TryGetValue(ch, out var id)) { symbols.Add(id); lastWasUnk = false; continue; }
            if (_byteFallback && Rune.DecodeFromUtf16(ch, out var rune, out _) == System.Buffers.OperationStatus.Done)
            {
                int n = rune.EncodeToUtf8(utf8);
                bool all = true;
                for (int b = 0; b < n; b++) all &= _byteIds[utf8[b]] >= 0;
                if (all)
                {
                    for (int b = 0; b < n; b++) symbols.Add(_byteIds[utf8[b]]);
                    lastWasUnk = false;
                    continue;
                }
            }
            var unk = _unk ?? throw new ArgumentException(
                $"{_source}: \"{ch}\" is not in the vocabulary{(_byteFallback ? " nor are its byte tokens" : "")} and model.unk_token is null");
            if (!(_fuseUnk && lastWasUnk)) symbols.Add(unk);
            lastWasUnk = true;
        }
        MergeAll(symbols);
        ids.AddRange(symbols);
    }

    /// <summary>Merges in place: a doubly linked list over <paramref name="symbols"/>, pairs queued by (rank, position).</summary>
    private void MergeAll(List<int> symbols)
    {
        int n = symbols.Count;
        if (n < 2) return;
        var ids = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; alive[i] = true; }

        var queue = new PriorityQueue<(int Pos, int NewId), (int Rank, int Pos)>();
        void Push(int pos)
        {
            int right = next[pos];
            if (right >= 0 && _merges.TryGetValue((ids[pos], ids[right]), out var m)) queue.Enqueue((pos, m.NewId), (m.Rank, pos));
        }
        for (int i = 0; i + 1 < n; i++) Push(i);

        while (queue.TryDequeue(out var top, out _))
        {
            int pos = top.Pos;
            if (!alive[pos] || next[pos] < 0) continue;
            int right = next[pos];
            // Stale entry: the pair at pos has changed since it was queued.
            if (!_merges.TryGetValue((ids[pos], ids[right]), out var m) || m.NewId != top.NewId) continue;
            ids[pos] = m.NewId;
            alive[right] = false;
            next[pos] = next[right];
            if (next[right] >= 0) prev[next[right]] = pos;
            if (prev[pos] >= 0) Push(prev[pos]);
            Push(pos);
        }

        symbols.Clear();
        for (int i = 0; i >= 0; i = next[i]) symbols.Add(ids[i]);
    }
}
