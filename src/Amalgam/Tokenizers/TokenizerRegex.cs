using System.Text.RegularExpressions;

namespace Amalgam.Tokenizers;

/// <summary>
/// A regex from a tokenizer file (a Split pre-tokenizer's or a Replace normalizer's pattern), which the user did
/// not write: compiled with the backtracking engine, whose matches Hugging Face's (Oniguruma-style) patterns
/// assume, but with <see cref="MatchTimeout"/>, so a catastrophically backtracking pattern fails naming the file
/// and field instead of hanging the encoder.
/// </summary>
internal sealed class TokenizerRegex
{
    /// <summary>How long one match may take; real pre-tokenizer patterns take microseconds per piece.</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(1);

    private readonly Regex _regex;
    private readonly string _where;

    private TokenizerRegex(Regex regex, string where) => (_regex, _where) = (regex, where);

    /// <summary>Compiles <paramref name="pattern"/> of <paramref name="path"/>'s field <paramref name="at"/>; a bad pattern names both.</summary>
    public static TokenizerRegex Create(string pattern, string path, string at, bool compiled = false)
    {
        try
        {
            var options = RegexOptions.CultureInvariant | (compiled ? RegexOptions.Compiled : RegexOptions.None);
            return new TokenizerRegex(new Regex(pattern, options, MatchTimeout), $"{path}: {at}.pattern");
        }
        catch (ArgumentException e)
        {
            throw TokenizerJson.Bad(path, $"{at}.pattern is not a .NET regular expression: {e.Message.Split('\n')[0]}", e);
        }
    }

    /// <summary>A trusted built-in pattern (GPT-2's), without a timeout.</summary>
    public static TokenizerRegex Trusted(string pattern, string name) =>
        new(new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant), name);

    /// <summary>The matches of the whole text (materialised, so a timeout is thrown here and named).</summary>
    public IReadOnlyList<Match> Matches(string text)
    {
        try { return [.. _regex.Matches(text).Cast<Match>()]; }
        catch (RegexMatchTimeoutException e) { throw TimedOut(text, e); }
    }

    public string Replace(string text, string replacement)
    {
        try { return _regex.Replace(text, replacement); }
        catch (RegexMatchTimeoutException e) { throw TimedOut(text, e); }
    }

    private InvalidDataException TimedOut(string text, Exception e) =>
        new($"{_where}: one match took longer than {MatchTimeout.TotalSeconds:0} s on a text of {text.Length:N0} characters (the pattern backtracks catastrophically); refusing it", e);
}
