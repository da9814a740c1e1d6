using System.Diagnostics;
using System.Text.Json.Nodes;
using Amalgam.Tokenizers;

namespace Amalgam.Tests.Tokenizers;

/// <summary>Tokenizer files are untrusted input: bounded regexes, only regular files inside the model folder, a size cap.</summary>
public class TokenizerInputTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Tokenizers", "Fixtures", name);

    /// <summary>The split-bytelevel fixture with its Split pattern (or a Replace normalizer's) changed.</summary>
    private static string WithPattern(TempDir t, string pattern, bool inNormalizer)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture("split-bytelevel-bpe"), "tokenizer.json")))!;
        if (inNormalizer) json["normalizer"] = JsonNode.Parse($$"""{"type": "Replace", "pattern": {"Regex": {{System.Text.Json.JsonSerializer.Serialize(pattern)}}}, "content": "x"}""");
        else json["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"] = new JsonObject { ["Regex"] = pattern };
        t.File("tokenizer.json", json.ToJsonString());
        return t.Path;
    }

    [Theory]
    [InlineData(false, "pre_tokenizer.pretokenizers[0].pattern")]
    [InlineData(true, "normalizer.pattern")]
    public void A_catastrophically_backtracking_pattern_times_out_naming_the_file_and_field(bool inNormalizer, string field)
    {
        using var t = new TempDir();
        var tokenizer = TokenizerLoader.Load(WithPattern(t, "(a+)+$", inNormalizer));
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<InvalidDataException>(() => tokenizer.Encode(new string('a', 40) + "b", addBos: false));
        Assert.InRange(clock.Elapsed.TotalSeconds, TokenizerRegex.MatchTimeout.TotalSeconds * 0.9, 30);
        Assert.Equal($"{Path.Combine(t.Path, "tokenizer.json")}: {field}: one match took longer than 1 s on a text of 41 characters (the pattern backtracks catastrophically); refusing it", e.Message);
    }

    [Fact]
    public void An_invalid_pattern_is_refused_in_one_line_naming_the_field()
    {
        using var t = new TempDir();
        var e = Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(WithPattern(t, "(a", inNormalizer: false)));
        Assert.StartsWith($"{Path.Combine(t.Path, "tokenizer.json")}: pre_tokenizer.pretokenizers[0].pattern is not a .NET regular expression: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Fifos_devices_and_links_out_of_the_folder_are_refused_links_inside_are_read()
    {
        using var t = new TempDir();
        string outside = Path.Combine(t.Path, "outside");
        Directory.CreateDirectory(outside);
        File.Copy(Path.Combine(Fixture("bytelevel-bpe"), "tokenizer.json"), Path.Combine(outside, "tokenizer.json"));
        string model = Path.Combine(t.Path, "model");
        Directory.CreateDirectory(model);
        string file = Path.Combine(model, "tokenizer.json");

        File.CreateSymbolicLink(file, Path.Combine(outside, "tokenizer.json"));
        Assert.Equal($"{file}: a symbolic link to {Path.Combine(outside, "tokenizer.json")}, outside the folder that holds it; refusing to read it",
            Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(model)).Message);
        File.Delete(file);

        File.Copy(Path.Combine(outside, "tokenizer.json"), Path.Combine(model, "real.json"));
        File.CreateSymbolicLink(file, Path.Combine(model, "real.json"));
        Assert.Equal([15], TokenizerLoader.Load(model).Encode("lower", addBos: false));
        File.Delete(file);

        using (var mkfifo = Process.Start("mkfifo", [file])!) Assert.True(mkfifo.WaitForExit(10_000) && mkfifo.ExitCode == 0);
        Assert.Equal($"{file}: a FIFO (named pipe), not a regular file; refusing to read it", Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(model)).Message);
        File.Delete(file);

        File.CreateSymbolicLink(Path.Combine(model, "tokenizer.model"), "/dev/zero");
        Assert.Equal($"{Path.Combine(model, "tokenizer.model")}: a character device, not a regular file; refusing to read it",
            Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(model)).Message);
    }

    [Fact]
    public void A_tokenizer_file_over_the_size_limit_is_refused_before_reading()
    {
        using var t = new TempDir();
        using (var f = File.Create(Path.Combine(t.Path, "tokenizer.json"))) f.SetLength(Amalgam.Inputs.InputFiles.MaxTokenizerBytes + 1); // sparse
        Assert.Equal($"{Path.Combine(t.Path, "tokenizer.json")}: 268,435,457 bytes, more than the 268,435,456 allowed for this kind of file",
            Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(t.Path)).Message);
    }
}

/// <summary>What AFL++ found in its first minutes on tokenizer.json (bench/fuzz.sh tokenizer): raw System.Text.Json messages.</summary>
public class TokenizerFuzzFindingTests
{
    private static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "Tokenizers", "Fixtures", "bytelevel-bpe", "tokenizer.json");

    [Fact]
    public void Invalid_utf8_in_a_tokenizer_file_is_refused_naming_the_file()
    {
        using var t = new TempDir();
        var bytes = File.ReadAllBytes(Fixture).ToList();
        int at = bytes.IndexOf((byte)'"', bytes.IndexOf((byte)'{') + 1) + 1; // inside the first key
        bytes.Insert(at, 0xC1); // never valid in UTF-8
        File.WriteAllBytes(System.IO.Path.Combine(t.Path, "tokenizer.json"), [.. bytes]);
        Assert.Equal($"{System.IO.Path.Combine(t.Path, "tokenizer.json")}: not valid UTF-8 text", Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(t.Path)).Message);
    }

    [Fact]
    public void A_lone_surrogate_in_a_tokenizer_file_is_refused_naming_the_file()
    {
        using var t = new TempDir();
        string text = File.ReadAllText(Fixture);
        int at = text.IndexOf("\"vocab\"", StringComparison.Ordinal);
        Assert.True(at > 0);
        at = text.IndexOf('"', text.IndexOf('{', at)) + 1; // the first vocabulary entry
        t.File("tokenizer.json", text[..at] + "\\ud800" + text[at..]);
        Assert.Equal($"{System.IO.Path.Combine(t.Path, "tokenizer.json")}: a string holds a lone UTF-16 surrogate (an escape such as \\ud800 without its pair)",
            Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(t.Path)).Message);
    }
}
