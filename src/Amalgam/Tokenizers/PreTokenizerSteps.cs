using System.Text.Json;
using System.Text.RegularExpressions;
using static Amalgam.Tokenizers.TokenizerJson;

namespace Amalgam.Tokenizers;

/// <summary>A piece of text on its way to the model; <see cref="AtStart"/> is true only for the one that begins the input.</summary>
internal readonly record struct Piece(string Text, bool AtStart);

/// <summary>One stage of a Hugging Face pre-tokenizer: splits each piece into smaller ones.</summary>
internal abstract class PreTokenizerStep
{
    public abstract void Split(Piece piece, List<Piece> into);

    /// <summary>
    /// The pre-tokenizer of tokenizer.json as steps, and whether it ends in ByteLevel (byte-level BPE).
    /// Accepted: ByteLevel, Split, Metaspace, and Sequences of them with ByteLevel last.
    /// </summary>
    public static (List<PreTokenizerStep> Steps, bool ByteLevel) Read(JsonElement root, string path)
    {
        var steps = new List<PreTokenizerStep>();
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind == JsonValueKind.Null) return (steps, false);
        if (StringOrNull(pre, "type", path, "pre_tokenizer.") != "Sequence")
            return (steps, Add(pre, "pre_tokenizer", last: true, steps, path));

        var items = Get(pre, "pretokenizers", path, "pre_tokenizer.");
        int count = items.ValueKind == JsonValueKind.Array ? items.GetArrayLength() : 0;
        if (count == 0) throw Bad(path, "pre_tokenizer.pretokenizers must be a non-empty array");
        bool byteLevel = false;
        for (int i = 0; i < count; i++)
            byteLevel = Add(items[i], $"pre_tokenizer.pretokenizers[{i}]", i == count - 1, steps, path);
        return (steps, byteLevel);
    }

    private static readonly TokenizerRegex Gpt2 = TokenizerRegex.Trusted(SplitStep.Gpt2Pattern, "ByteLevel");

    /// <summary>Adds the step; true when it is ByteLevel.</summary>
    private static bool Add(JsonElement item, string at, bool last, List<PreTokenizerStep> steps, string path)
    {
        var type = StringOrNull(item, "type", path, at + ".");
        switch (type)
        {
            case "ByteLevel":
                if (!last) throw Bad(path, $"{at}.type \"ByteLevel\" is supported only as the last pre-tokenizer");
                // add_prefix_space would insert a space the original text does not have; RoBERTa-style files use it.
                if (Bool(item, "add_prefix_space", path)) throw Bad(path, $"{at}.add_prefix_space is true, which is not supported");
                bool useRegex = !item.TryGetProperty("use_regex", out var u) || u.ValueKind != JsonValueKind.False;
                if (useRegex) steps.Add(new SplitStep(Gpt2, SplitBehavior.Isolated));
                return true;
            case "Split":
                steps.Add(SplitStep.Read(item, at, path));
                return false;
            case "Metaspace":
                steps.Add(MetaspaceStep.Read(item, at, path));
                return false;
            default:
                throw Bad(path, $"{at}.type \"{type}\" is not supported (only ByteLevel, Split, Metaspace and Sequence)");
        }
    }
}

internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>Hugging Face's Split: the text is cut into matches and the stretches between them, then regrouped by behavior.</summary>
internal sealed class SplitStep(TokenizerRegex regex, SplitBehavior behavior) : PreTokenizerStep
{
    // GPT-2's pre-tokenization regex, which the ByteLevel pre-tokenizer applies when use_regex is true.
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public static SplitStep Read(JsonElement split, string at, string path)
    {
        var name = StringOrNull(split, "behavior", path, at + ".");
        if (name is null || !Enum.GetNames<SplitBehavior>().Contains(name) || !Enum.TryParse<SplitBehavior>(name, out var behavior))
            throw Bad(path, $"{at}.behavior \"{name}\" is not supported (Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
        if (Bool(split, "invert", path, at + ".")) throw Bad(path, $"{at}.invert is true, which is not supported");
        return new SplitStep(TokenizerRegex.Create(Pattern(split, at, path), path, at, compiled: true), behavior);
    }

    public override void Split(Piece piece, List<Piece> into) => SplitInto(piece, regex, behavior, into);

    public static void SplitInto(Piece piece, TokenizerRegex regex, SplitBehavior behavior, List<Piece> into)
    {
        var text = piece.Text;
        // (start, end, isMatch) covering the whole text; empty matches are skipped as in Hugging Face.
        var spans = new List<(int Start, int End, bool IsMatch)>();
        int at = 0;
        foreach (Match m in regex.Matches(text))
        {
            if (m.Length == 0) continue;
            if (m.Index > at) spans.Add((at, m.Index, false));
            spans.Add((m.Index, m.Index + m.Length, true));
            at = m.Index + m.Length;
        }
        if (at < text.Length) spans.Add((at, text.Length, false));

        var groups = new List<(int Start, int End)>();
        bool previousMatch = false;
        foreach (var (start, end, isMatch) in spans)
        {
            bool extend = behavior switch
            {
                SplitBehavior.MergedWithPrevious => isMatch && !previousMatch,
                SplitBehavior.MergedWithNext => previousMatch && !isMatch,
                SplitBehavior.Contiguous => isMatch == previousMatch,
                _ => false,
            };
            if (behavior == SplitBehavior.Removed && isMatch) { previousMatch = true; continue; }
            if (extend && groups.Count > 0) groups[^1] = (groups[^1].Start, end);
            else groups.Add((start, end));
            previousMatch = isMatch;
        }
        foreach (var (start, end) in groups)
            into.Add(new Piece(text[start..end], piece.AtStart && start == 0));
    }
}

internal enum PrependScheme { Always, First, Never }

/// <summary>
/// Hugging Face's Metaspace pre-tokenizer: spaces become "▁", a "▁" is put in front (always, or only at the start of
/// the input for "first", which is SentencePiece's add_dummy_prefix as transformers converts it), and with split
/// the text is cut before every "▁".
/// </summary>
internal sealed class MetaspaceStep(string replacement, PrependScheme scheme, bool split) : PreTokenizerStep
{
    private readonly TokenizerRegex _delimiter = TokenizerRegex.Trusted(Regex.Escape(replacement), "Metaspace");

    public string Replacement => replacement;
    public PrependScheme Scheme => scheme;

    public static MetaspaceStep Read(JsonElement item, string at, string path)
    {
        var replacement = StringOrNull(item, "replacement", path, at + ".") ?? "\u2581";
        if (replacement.Length != 1) throw Bad(path, $"{at}.replacement must be one character");
        return new MetaspaceStep(replacement, ReadScheme(item, at, path), !item.TryGetProperty("split", out var s) || s.ValueKind != JsonValueKind.False);
    }

    /// <summary>prepend_scheme, or the older add_prefix_space (true = always).</summary>
    public static PrependScheme ReadScheme(JsonElement item, string at, string path)
    {
        var name = StringOrNull(item, "prepend_scheme", path, at + ".");
        if (name is null) return item.TryGetProperty("add_prefix_space", out var a) && a.ValueKind == JsonValueKind.False ? PrependScheme.Never : PrependScheme.Always;
        return name switch
        {
            "always" => PrependScheme.Always,
            "first" => PrependScheme.First,
            "never" => PrependScheme.Never,
            _ => throw Bad(path, $"{at}.prepend_scheme \"{name}\" is not one of always, first, never"),
        };
    }

    public override void Split(Piece piece, List<Piece> into)
    {
        var text = piece.Text.Replace(" ", replacement, StringComparison.Ordinal);
        bool prepend = scheme == PrependScheme.Always || (scheme == PrependScheme.First && piece.AtStart);
        if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal)) text = replacement + text;
        if (split) SplitStep.SplitInto(piece with { Text = text }, _delimiter, SplitBehavior.MergedWithNext, into);
        else into.Add(piece with { Text = text });
    }
}
