using System.Globalization;
using System.Text;
using System.Text.Json;
using static Amalgam.Tokenizers.TokenizerJson;

namespace Amalgam.Tokenizers;

/// <summary>
/// The decoder chain of a SentencePiece-style tokenizer.json, applied to token strings as Hugging Face's
/// <c>decode_chain</c> does: Replace ("▁" back to " "), ByteFallback (runs of <c>&lt;0xNN&gt;</c> to UTF-8 text, U+FFFD
/// per byte when invalid), Fuse (join), Strip (cut leading/trailing characters of each token), Metaspace.
/// Byte-level tokenizers decode in Microsoft.ML.Tokenizers instead.
/// </summary>
internal sealed class TokenDecoder
{
    private readonly Func<List<string>, List<string>>[] _steps;

    private TokenDecoder(Func<List<string>, List<string>>[] steps) => _steps = steps;

    public string Decode(List<string> tokens)
    {
        foreach (var step in _steps) tokens = step(tokens);
        return string.Concat(tokens);
    }

    /// <summary>The chain of a non-byte-level tokenizer.json; a missing decoder joins the tokens.</summary>
    public static TokenDecoder Read(JsonElement root, string path)
    {
        var steps = new List<Func<List<string>, List<string>>>();
        if (root.TryGetProperty("decoder", out var d) && d.ValueKind != JsonValueKind.Null) Add(d, "decoder", steps, path);
        return new TokenDecoder([.. steps]);
    }

    private static void Add(JsonElement d, string at, List<Func<List<string>, List<string>>> steps, string path)
    {
        var type = StringOrNull(d, "type", path, at + ".");
        switch (type)
        {
            case "Sequence":
                var list = Get(d, "decoders", path, at + ".");
                if (list.ValueKind != JsonValueKind.Array) throw Bad(path, $"{at}.decoders must be an array");
                int i = 0;
                foreach (var item in list.EnumerateArray()) Add(item, $"{at}.decoders[{i++}]", steps, path);
                break;
            case "Replace":
                var literal = LiteralPattern(d) ?? throw Bad(path, $"{at}.pattern must be {{\"String\": ...}}");
                var content = StringOrNull(d, "content", path, at + ".") ?? throw Bad(path, $"{at}.content is missing");
                steps.Add(tokens => tokens.ConvertAll(t => t.Replace(literal, content, StringComparison.Ordinal)));
                break;
            case "ByteFallback": steps.Add(ByteFallback); break;
            case "Fuse": steps.Add(tokens => [string.Concat(tokens)]); break;
            case "Strip":
                var strip = StringOrNull(d, "content", path, at + ".") ?? " ";
                if (strip.Length != 1) throw Bad(path, $"{at}.content must be one character");
                int start = Int(d, "start", path, at + ".", 0), stop = Int(d, "stop", path, at + ".", 0);
                steps.Add(tokens => tokens.ConvertAll(t => Strip(t, strip[0], start, stop)));
                break;
            case "Metaspace":
                var replacement = StringOrNull(d, "replacement", path, at + ".") ?? "\u2581";
                bool dropFirstSpace = MetaspaceStep.ReadScheme(d, at, path) != PrependScheme.Never;
                steps.Add(tokens =>
                {
                    var output = new List<string>(tokens.Count);
                    for (int k = 0; k < tokens.Count; k++)
                    {
                        var t = tokens[k].Replace(replacement, " ", StringComparison.Ordinal);
                        if (k == 0 && dropFirstSpace && t.StartsWith(' ')) t = t[1..];
                        output.Add(t);
                    }
                    return output;
                });
                break;
            default:
                throw Bad(path, $"{at}.type \"{type ?? "(missing)"}\" is not supported here (Sequence, Replace, ByteFallback, Fuse, Strip, Metaspace; ByteLevel only with a ByteLevel pre-tokenizer)");
        }
    }

    private static List<string> ByteFallback(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        var bytes = new List<byte>();
        void Flush()
        {
            if (bytes.Count == 0) return;
            try
            {
                output.Add(new UTF8Encoding(false, throwOnInvalidBytes: true).GetString([.. bytes]));
            }
            catch (DecoderFallbackException)
            {
                output.Add(new string('\uFFFD', bytes.Count));
            }
            bytes.Clear();
        }
        foreach (var t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>'
                && byte.TryParse(t.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                continue;
            }
            Flush();
            output.Add(t);
        }
        Flush();
        return output;
    }

    private static string Strip(string token, char c, int start, int stop)
    {
        int from = 0, to = token.Length;
        while (from < start && from < to && token[from] == c) from++;
        int cut = 0;
        while (cut < stop && to > from && token[to - 1] == c) { to--; cut++; }
        return token[from..to];
    }
}
