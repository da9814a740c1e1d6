using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Amalgam.Inputs;

/// <summary>
/// The one way YAML inputs (merge recipes, suite.yaml) are loaded: size, nesting depth, node count and aliases are
/// checked on the parser's event stream (which keeps no recursion) before the document tree is built, so a deeply
/// nested or huge document is refused in one line instead of overflowing the stack. Errors name the source.
/// </summary>
public static class YamlInput
{
    public sealed record Limits(int MaxChars = 1 << 20, int MaxDepth = 32, int MaxNodes = 200_000, int MaxAliases = 0);

    public static readonly Limits Default = new();

    /// <summary>Parses <paramref name="text"/> into one document's root node, or throws <see cref="InvalidDataException"/> naming <paramref name="source"/>.</summary>
    public static YamlNode LoadRoot(string text, string source, Limits? limits = null)
    {
        var stream = Load(text, source, limits);
        if (stream.Documents.Count != 1) throw new InvalidDataException($"{source}: expected one YAML document, found {stream.Documents.Count}");
        return stream.Documents[0].RootNode;
    }

    public static YamlStream Load(string text, string source, Limits? limits = null)
    {
        limits ??= Default;
        if (text.Length > limits.MaxChars)
            throw new InvalidDataException($"{source}: {text.Length:N0} characters, more than the {limits.MaxChars:N0} a YAML input may have");
        try
        {
            Check(text, source, limits);
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            return stream;
        }
        catch (YamlException e)
        {
            throw new InvalidDataException($"{source}: not valid YAML (line {e.Start.Line}: {FirstLine(e.Message)})");
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet's scanner throws this for some truncated documents (e.g. an unclosed "[" at the end).
            throw new InvalidDataException($"{source}: not valid YAML (unexpected end: {FirstLine(e.Message)})");
        }
    }

    static void Check(string text, string source, Limits limits)
    {
        var parser = new Parser(new StringReader(text));
        int depth = 0, nodes = 0, aliases = 0;
        while (parser.MoveNext())
        {
            var e = parser.Current!;
            switch (e)
            {
                case MappingStart or SequenceStart:
                    if (++depth > limits.MaxDepth)
                        throw new InvalidDataException($"{source}: line {e.Start.Line}: nested deeper than {limits.MaxDepth} levels");
                    break;
                case MappingEnd or SequenceEnd:
                    depth--;
                    break;
                case AnchorAlias:
                    if (++aliases > limits.MaxAliases)
                        throw new InvalidDataException($"{source}: line {e.Start.Line}: YAML aliases (*name) are not accepted here");
                    break;
            }
            if (e is NodeEvent && ++nodes > limits.MaxNodes)
                throw new InvalidDataException($"{source}: more than {limits.MaxNodes:N0} YAML nodes");
        }
    }

    /// <summary>A mapping key, which must be a plain scalar: <c>{[a]: 1}</c> or <c>? {a: 1}</c> are refused by line.</summary>
    public static string Key(YamlNode key, string? at, string source)
    {
        if (key is YamlScalarNode s) return s.Value ?? "";
        string kind = key is YamlSequenceNode ? "a list" : key is YamlMappingNode ? "a mapping" : "not a name";
        throw new InvalidDataException($"{source}: {(at is null ? "" : at + ": ")}line {key.Start.Line}: a key is {kind}; keys must be plain names");
    }

    static string FirstLine(string s) => s.Split('\n', 2)[0].Trim();
}
