using System.Globalization;
using System.Text;

namespace Amalgam.Tokenizers.ChatTemplates;

internal enum TokenKind { Text, OutputStart, BlockStart, TagEnd, Name, String, Integer, Float, Operator, End }

internal readonly record struct Token(TokenKind Kind, string Value, int Line);

/// <summary>
/// Splits a Jinja template into text and tag tokens, applying whitespace control as transformers configures Jinja:
/// <c>trim_blocks</c> (the first newline after a block or comment tag is dropped), <c>lstrip_blocks</c> (spaces and tabs
/// before a block or comment tag at the start of a line are dropped, unless the tag opens with <c>+</c>), and the
/// <c>-</c> markers, which strip all whitespace on their side. Comments produce no tokens.
/// </summary>
internal static class TemplateLexer
{
    private static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    public static List<Token> Tokenize(string source)
    {
        var tokens = new List<Token>();
        int pos = 0, line = 1;
        bool stripNextText = false;
        while (pos <= source.Length)
        {
            int open = FindOpen(source, pos);
            var text = source[pos..(open < 0 ? source.Length : open)];
            if (stripNextText) text = text.TrimStart();
            if (open < 0) { Emit(text); break; }

            char kind = source[open + 1];
            char modifier = open + 2 < source.Length ? source[open + 2] : '\0';
            if (modifier == '-') text = text.TrimEnd();
            else if (kind != '{' && modifier != '+')
            {
                // lstrip_blocks: only when the tag is the first thing on its line.
                int lineStart = text.LastIndexOf('\n') + 1;
                bool atLineStart = lineStart > 0 || pos == 0 || source[pos - 1] == '\n';
                if (atLineStart && text.AsSpan(lineStart).IndexOfAnyExcept(' ', '\t') < 0) text = text[..lineStart];
            }
            Emit(text);
            line += CountLines(source, pos, open);
            int bodyStart = open + 2 + (modifier is '-' or '+' ? 1 : 0);

            bool stripAfter;
            int after;
            if (kind == '#')
            {
                int close = source.IndexOf("#}", bodyStart, StringComparison.Ordinal);
                if (close < 0) throw new TemplateException($"line {line}: comment is not closed");
                stripAfter = source[close - 1] == '-' && close - 1 >= bodyStart;
                after = close + 2;
                line += CountLines(source, open, after);
            }
            else
            {
                tokens.Add(new Token(kind == '{' ? TokenKind.OutputStart : TokenKind.BlockStart, "", line));
                (after, stripAfter) = TokenizeTag(source, bodyStart, kind == '{' ? '}' : '%', tokens, ref line);
            }
            stripNextText = stripAfter;
            if (!stripAfter && kind != '{' && after < source.Length && source[after] == '\n') { after++; line++; } // trim_blocks
            pos = after;
        }
        tokens.Add(new Token(TokenKind.End, "", line));
        return tokens;

        void Emit(string text)
        {
            if (text.Length > 0) tokens.Add(new Token(TokenKind.Text, text, line));
        }
    }

    private static int FindOpen(string s, int from)
    {
        for (int i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
            if (s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    private static int CountLines(string s, int from, int to)
    {
        int n = 0;
        for (int i = from; i < to && i < s.Length; i++) if (s[i] == '\n') n++;
        return n;
    }

    /// <summary>Tokens of one tag up to its closing <c>}}</c> or <c>%}</c>; returns the position after it and whether it was <c>-}}</c>/<c>-%}</c>.</summary>
    private static (int After, bool StripAfter) TokenizeTag(string s, int pos, char closeChar, List<Token> tokens, ref int line)
    {
        while (true)
        {
            while (pos < s.Length && char.IsWhiteSpace(s[pos])) { if (s[pos] == '\n') line++; pos++; }
            if (pos >= s.Length) throw new TemplateException($"line {line}: tag is not closed");
            if (s[pos] == '-' && pos + 2 < s.Length && s[pos + 1] == closeChar && s[pos + 2] == '}')
            {
                tokens.Add(new Token(TokenKind.TagEnd, "", line));
                return (pos + 3, true);
            }
            if (s[pos] == closeChar && pos + 1 < s.Length && s[pos + 1] == '}')
            {
                tokens.Add(new Token(TokenKind.TagEnd, "", line));
                return (pos + 2, false);
            }
            char c = s[pos];
            if (c is '\'' or '"')
            {
                var sb = new StringBuilder();
                int i = pos + 1;
                for (; i < s.Length && s[i] != c; i++)
                {
                    if (s[i] == '\n') line++;
                    if (s[i] != '\\' || i + 1 >= s.Length) { sb.Append(s[i]); continue; }
                    i++;
                    switch (s[i])
                    {
                        case 'n': sb.Append('\n'); break;
                        case 't': sb.Append('\t'); break;
                        case 'r': sb.Append('\r'); break;
                        case '\\': sb.Append('\\'); break;
                        case '\'': sb.Append('\''); break;
                        case '"': sb.Append('"'); break;
                        case 'u' when i + 4 < s.Length:
                            sb.Append((char)int.Parse(s.AsSpan(i + 1, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                            i += 4;
                            break;
                        default: sb.Append('\\').Append(s[i]); break; // Python keeps unknown escapes
                    }
                }
                if (i >= s.Length) throw new TemplateException($"line {line}: string literal is not closed");
                tokens.Add(new Token(TokenKind.String, sb.ToString(), line));
                pos = i + 1;
            }
            else if (char.IsAsciiDigit(c))
            {
                int i = pos;
                while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '_')) i++;
                bool isFloat = i + 1 < s.Length && s[i] == '.' && char.IsAsciiDigit(s[i + 1]);
                if (isFloat) { i++; while (i < s.Length && char.IsAsciiDigit(s[i])) i++; }
                tokens.Add(new Token(isFloat ? TokenKind.Float : TokenKind.Integer, s[pos..i].Replace("_", ""), line));
                pos = i;
            }
            else if (char.IsLetter(c) || c == '_')
            {
                int i = pos;
                while (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] == '_')) i++;
                tokens.Add(new Token(TokenKind.Name, s[pos..i], line));
                pos = i;
            }
            else
            {
                var op = Operators.FirstOrDefault(o => string.CompareOrdinal(s, pos, o, 0, o.Length) == 0)
                    ?? throw new TemplateException($"line {line}: unexpected character '{c}'");
                tokens.Add(new Token(TokenKind.Operator, op, line));
                pos += op.Length;
            }
        }
    }
}
