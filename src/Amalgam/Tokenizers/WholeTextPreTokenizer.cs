using Microsoft.ML.Tokenizers;

namespace Amalgam.Tokenizers;

/// <summary>
/// Hands the library each piece untouched. We split text ourselves (added tokens, then the file's regexes with
/// Hugging Face's "Isolated" semantics) because the library's RegexPreTokenizer drops text the regex does not match.
/// </summary>
internal sealed class WholeTextPreTokenizer : PreTokenizer
{
    public static readonly WholeTextPreTokenizer Instance = new();

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) =>
        string.IsNullOrEmpty(text) ? [] : [(0, text.Length)];

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) =>
        text.IsEmpty ? [] : [(0, text.Length)];
}
