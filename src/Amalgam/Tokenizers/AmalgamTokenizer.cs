using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Amalgam.Tokenizers;

/// <summary>
/// Our own minimal tokenizer (<c>tokenizer.amalgam.json</c>, format <c>amalgam-tokens-v1</c>): a list of token
/// strings whose index is the id, encoded by greedy longest-prefix match. Meant for the tiny models we train
/// ourselves, where a character-level vocabulary is enough and no BPE training is wanted.
/// </summary>
public sealed class AmalgamTokenizer : ITextTokenizer
{
    public const string FileName = "tokenizer.amalgam.json";
    public const string FormatId = "amalgam-tokens-v1";
    public const string InMemorySource = "(in memory)";

    /// <summary>Specials used by <see cref="CreateCharLevel"/>, in id order.</summary>
    public const string DefaultPad = "<pad>", DefaultUnk = "<unk>", DefaultBos = "<s>", DefaultEos = "</s>";

    private static readonly string[] KnownFields = ["format", "tokens", "bos", "eos", "pad", "unk"];

    private readonly string[] _tokens;
    private readonly Dictionary<string, int> _matchable;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _matchableBySpan;
    private readonly int _longestMatchable;
    private readonly bool[] _skipOnDecode;

    public AmalgamTokenizer(IReadOnlyList<string> tokens, string? bos = null, string? eos = null,
        string? pad = null, string? unk = null)
        : this(tokens, bos, eos, pad, unk, InMemorySource)
    {
    }

    private AmalgamTokenizer(IReadOnlyList<string> tokens, string? bos, string? eos, string? pad, string? unk, string source)
    {
        if (Validate(tokens, (bos, "bos"), (eos, "eos"), (pad, "pad"), (unk, "unk")) is { } error)
            throw source == InMemorySource ? new ArgumentException(error) : new InvalidDataException($"{source}: {error}");

        _tokens = tokens.ToArray();
        Source = source;
        Bos = bos; Eos = eos; Pad = pad; Unk = unk;
        BosId = IdOf(bos); EosId = IdOf(eos); PadId = IdOf(pad); UnkId = IdOf(unk);

        // Specials are never produced by matching text: "<s>" typed by a user stays plain characters.
        var specials = new HashSet<string?> { bos, eos, pad, unk };
        _matchable = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _tokens.Length; i++)
            if (!specials.Contains(_tokens[i]))
                _matchable[_tokens[i]] = i;
        _matchableBySpan = _matchable.GetAlternateLookup<ReadOnlySpan<char>>();
        _longestMatchable = _matchable.Count == 0 ? 0 : _matchable.Keys.Max(t => t.Length);

        _skipOnDecode = new bool[_tokens.Length];
        foreach (var id in new[] { BosId, EosId, PadId })
            if (id is int i) _skipOnDecode[i] = true;
    }

    public IReadOnlyList<string> Tokens => _tokens;
    public string? Bos { get; }
    public string? Eos { get; }
    public string? Pad { get; }
    public string? Unk { get; }
    public int? BosId { get; }
    public int? EosId { get; }
    public int? PadId { get; }
    public int? UnkId { get; }
    public int VocabSize => _tokens.Length;
    public string Source { get; }

    /// <summary>
    /// Character-level vocabulary for <paramref name="texts"/>: ids 0-3 are &lt;pad&gt;, &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;,
    /// then every distinct character (Unicode scalar, so surrogate pairs stay whole) in ordinal order.
    /// </summary>
    public static AmalgamTokenizer CreateCharLevel(IEnumerable<string> texts)
    {
        var chars = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var text in texts)
            foreach (var rune in text.EnumerateRunes())
                chars.Add(rune.ToString());
        string[] specials = [DefaultPad, DefaultUnk, DefaultBos, DefaultEos];
        // A text containing e.g. "<" is fine: specials are multi-character, single characters never collide.
        return new AmalgamTokenizer([.. specials, .. chars], DefaultBos, DefaultEos, DefaultPad, DefaultUnk);
    }

    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        var ids = new List<int>(text.Length + 1);
        if (addBos && BosId is int bos) ids.Add(bos);

        var rest = text.AsSpan();
        while (!rest.IsEmpty)
        {
            int taken = 0;
            for (int len = Math.Min(_longestMatchable, rest.Length); len > 0; len--)
            {
                if (_matchableBySpan.TryGetValue(rest[..len], out var id))
                {
                    ids.Add(id);
                    taken = len;
                    break;
                }
            }
            if (taken == 0)
            {
                // Skip a whole scalar so a surrogate pair becomes one unk, not two.
                Rune.DecodeFromUtf16(rest, out var rune, out taken);
                ids.Add(UnkId ?? throw new ArgumentException(
                    $"{Source}: no token matches \"{rune}\" at index {text.Length - rest.Length} and the tokenizer has no unk token"));
            }
            rest = rest[taken..];
        }
        return ids;
    }

    /// <summary>Our format adds BOS only (no EOS): the tiny models are trained on BOS text EOS and prompted with BOS text.</summary>
    public IReadOnlyList<int> EncodeWithSpecialTokens(string text) => Encode(text, addBos: true);

    public string? IdToToken(int id) => (uint)id < (uint)_tokens.Length ? _tokens[id] : null;

    public string Decode(IEnumerable<int> ids) => Decode(ids, skipSpecialTokens: true);

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        var sb = new StringBuilder();
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)_tokens.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"{Source}: token id outside 0..{_tokens.Length - 1}");
            if (!skipSpecialTokens || !_skipOnDecode[id]) sb.Append(_tokens[id]);
        }
        return sb.ToString();
    }

    public static AmalgamTokenizer Load(string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(Inputs.InputFiles.ReadTextInFolder(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Bad(path, "the top level must be a JSON object");
            foreach (var prop in root.EnumerateObject())
                if (!KnownFields.Contains(prop.Name))
                    throw Bad(path, $"unknown field \"{prop.Name}\" (known: {string.Join(", ", KnownFields)})");

            if (!root.TryGetProperty("format", out var format) || format.ValueKind != JsonValueKind.String)
                throw Bad(path, $"format is missing or not a string (expected \"{FormatId}\")");
            if (format.GetString() != FormatId)
                throw Bad(path, $"format is \"{format.GetString()}\", expected \"{FormatId}\"");

            if (!root.TryGetProperty("tokens", out var tokensEl) || tokensEl.ValueKind != JsonValueKind.Array)
                throw Bad(path, "tokens is missing or not an array");
            var tokens = new List<string>(tokensEl.GetArrayLength());
            foreach (var el in tokensEl.EnumerateArray())
            {
                if (el.ValueKind != JsonValueKind.String)
                    throw Bad(path, $"tokens[{tokens.Count}] is {el.ValueKind}, not a string");
                tokens.Add(el.GetString()!);
            }

            return new AmalgamTokenizer(tokens, OptionalString(root, "bos", path), OptionalString(root, "eos", path),
                OptionalString(root, "pad", path), OptionalString(root, "unk", path), path);
        }
    }

    /// <summary>Writes the tokenizer atomically: a temporary file in the same folder, then a rename over <paramref name="path"/>.</summary>
    public void Save(string path)
    {
        var full = Path.GetFullPath(path);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = File.Create(tmp))
            using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                writer.WriteStartObject();
                writer.WriteString("format", FormatId);
                foreach (var (name, value) in new[] { ("bos", Bos), ("eos", Eos), ("pad", Pad), ("unk", Unk) })
                    if (value is not null) writer.WriteString(name, value);
                writer.WriteStartArray("tokens");
                foreach (var t in _tokens) writer.WriteStringValue(t);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private int? IdOf(string? token) => token is null ? null : Array.IndexOf(_tokens, token);

    /// <summary>The first problem with the given vocabulary, or null when it is valid.</summary>
    private static string? Validate(IReadOnlyList<string> tokens, params (string? Value, string Field)[] specials)
    {
        if (tokens.Count == 0) return "tokens is empty";
        var firstIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++)
        {
            if (tokens[i] is null) return $"tokens[{i}] is null";
            if (tokens[i].Length == 0) return $"tokens[{i}] is empty";
            if (!firstIndex.TryAdd(tokens[i], i))
                return $"tokens[{i}] duplicates tokens[{firstIndex[tokens[i]]}] ({Quote(tokens[i])})";
        }
        foreach (var (value, field) in specials)
            if (value is not null && !firstIndex.ContainsKey(value))
                return $"{field} {Quote(value)} is not one of the tokens";
        return null;
    }

    private static string? OptionalString(JsonElement root, string field, string path)
    {
        if (!root.TryGetProperty(field, out var el) || el.ValueKind == JsonValueKind.Null) return null;
        if (el.ValueKind != JsonValueKind.String) throw Bad(path, $"{field} is {el.ValueKind}, not a string");
        return el.GetString();
    }

    private static string Quote(string s) => $"\"{s}\"";

    private static InvalidDataException Bad(string path, string message) => new($"{path}: {message}");
}
