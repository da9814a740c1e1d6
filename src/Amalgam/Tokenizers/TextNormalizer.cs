using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using static Amalgam.Tokenizers.TokenizerJson;

namespace Amalgam.Tokenizers;

/// <summary>
/// The normalizers of tokenizer.json we reproduce: Unicode normal forms, and the Prepend/Replace pair SentencePiece
/// conversions use (Llama 2: prepend "▁", spaces to "▁"; Gemma: spaces to "▁"). Applied to each stretch of text
/// between added tokens, as Hugging Face does, so a Prepend also follows every special token.
/// </summary>
internal sealed class TextNormalizer
{
    private readonly Func<string, string>[] _steps;

    private TextNormalizer(Func<string, string>[] steps) => _steps = steps;

    public bool IsIdentity => _steps.Length == 0;

    public string Apply(string text)
    {
        foreach (var step in _steps) text = step(text);
        return text;
    }

    public static TextNormalizer Read(JsonElement root, string path)
    {
        var steps = new List<Func<string, string>>();
        if (root.TryGetProperty("normalizer", out var n) && n.ValueKind != JsonValueKind.Null) Add(n, "normalizer", steps, path);
        return new TextNormalizer([.. steps]);
    }

    private static void Add(JsonElement n, string at, List<Func<string, string>> steps, string path)
    {
        var type = StringOrNull(n, "type", path, at + ".");
        switch (type)
        {
            case "NFC": steps.Add(s => s.Normalize(NormalizationForm.FormC)); break;
            case "NFD": steps.Add(s => s.Normalize(NormalizationForm.FormD)); break;
            case "NFKC": steps.Add(s => s.Normalize(NormalizationForm.FormKC)); break;
            case "NFKD": steps.Add(s => s.Normalize(NormalizationForm.FormKD)); break;
            case "Prepend":
                var prefix = StringOrNull(n, "prepend", path, at + ".") ?? throw Bad(path, $"{at}.prepend is missing");
                steps.Add(s => s.Length == 0 ? s : prefix + s); // HF prepends only to non-empty text
                break;
            case "Replace":
                var content = StringOrNull(n, "content", path, at + ".") ?? throw Bad(path, $"{at}.content is missing");
                if (LiteralPattern(n) is { } literal)
                {
                    if (literal.Length == 0) throw Bad(path, $"{at}.pattern is empty");
                    steps.Add(s => s.Replace(literal, content, StringComparison.Ordinal));
                }
                else
                {
                    var regex = TokenizerRegex.Create(Pattern(n, at, path), path, at);
                    steps.Add(s => regex.Replace(s, content.Replace("$", "$$")));
                }
                break;
            case "Sequence":
                var list = Get(n, "normalizers", path, at + ".");
                if (list.ValueKind != JsonValueKind.Array) throw Bad(path, $"{at}.normalizers must be an array");
                int i = 0;
                foreach (var item in list.EnumerateArray()) Add(item, $"{at}.normalizers[{i++}]", steps, path);
                break;
            default:
                throw Bad(path, $"{at}.type \"{type}\" is not supported (only NFC, NFD, NFKC, NFKD, Prepend, Replace and Sequence)");
        }
    }
}
