using System.Text.Json;
using Amalgam.Tests.Tokenizers;
using Amalgam.Tokenizers;

namespace Amalgam.Tests.Cli;

/// <summary><c>amalgam tokenize</c> and <c>generate --chat</c> on the real tokenizer files of tests/Golden/tokenizers.</summary>
public class TokenizeCommandTests
{
    private static readonly string ChatGoldens = Path.Combine(TestData.RepoRoot, "tests", "Golden", "tokenizers", "chat", "goldens.json");

    [Theory]
    [InlineData("gemma3", 25)] // "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    [InlineData("llama2", 22)] // "<s>special</s> tokens <unk>"
    public void Text_PrintsHuggingFaceIdsWithSpecialTokens_AndPieces(string model, int golden)
    {
        var g = TokenizerGoldens.Read(model)[golden];
        var r = CliRunner.Run("tokenize", "--model", TokenizerGoldens.ModelDir(model), "--text", g.Text, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var json = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(g.IdsWithSpecial, json.GetProperty("ids").Deserialize<int[]>());
        var tokenizer = TokenizerLoader.Load(TokenizerGoldens.ModelDir(model));
        Assert.Equal(g.IdsWithSpecial!.Select(id => tokenizer.IdToToken(id)), json.GetProperty("pieces").Deserialize<string[]>());

        var plain = CliRunner.Run("tokenize", "--model", TokenizerGoldens.ModelDir(model), "--text", g.Text);
        Assert.Equal(g.IdsWithSpecial!.Length, plain.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.StartsWith($"{g.IdsWithSpecial![0]}\t", plain.Stdout);
    }

    [Fact]
    public void Decode_IsTheReverse()
    {
        var g = TokenizerGoldens.Read("llama2")[22];
        var dir = TokenizerGoldens.ModelDir("llama2");
        var r = CliRunner.Run("tokenize", "--model", dir, "--decode", string.Join(",", g.IdsWithSpecial!), "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(g.DecodedWithSpecial, JsonDocument.Parse(r.Stdout).RootElement.GetProperty("text").GetString());
        var skipped = CliRunner.Run("tokenize", "--model", dir, "--decode", string.Join(",", g.Ids), "--skip-special-tokens");
        Assert.Equal(g.Decoded + "\n", skipped.Stdout);
    }

    [Fact]
    public void Chat_RendersTheModelsTemplate_AndEncodesIt()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(ChatGoldens));
        var root = doc.RootElement;
        var expected = root.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("template").GetString() == "qwen3"
            && c.GetProperty("conversation").GetString() == "system_multi_turn" && c.GetProperty("add_generation_prompt").GetBoolean()).GetProperty("text").GetString()!;
        using var tmp = new TempDir();
        var messages = tmp.File("chat.json", root.GetProperty("conversations").GetProperty("system_multi_turn").GetRawText());
        var dir = TokenizerGoldens.ModelDir("qwen3");
        var r = CliRunner.Run("tokenize", "--model", dir, "--chat", messages, "--add-generation-prompt", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var json = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(expected, json.GetProperty("text").GetString());
        Assert.Equal(TokenizerLoader.Load(dir).Encode(expected, addBos: false), json.GetProperty("ids").Deserialize<int[]>());
        Assert.Equal(151644, json.GetProperty("ids")[0].GetInt32()); // <|im_start|> is one added token
    }

    [Fact]
    public void GenerateChat_PromptsWithTheRenderedTemplate()
    {
        using var tmp = new TempDir();
        var model = Path.Combine(tmp.Path, "model");
        Directory.CreateDirectory(model);
        foreach (var f in Directory.GetFiles(TestData.Golden("llama_gqa"))) File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(model, "chat_template.jinja"), "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}");
        var messages = tmp.File("chat.json", """[{"role": "user", "content": "the cat"}]""");
        var r = CliRunner.Run("generate", "--model", model, "--chat", messages, "--max-new-tokens", "3", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var expected = TokenizerLoader.Load(model).Encode("user: the cat\nassistant:", addBos: false);
        Assert.Equal(expected, JsonDocument.Parse(r.Stdout).RootElement.GetProperty("prompt_ids").Deserialize<int[]>());
    }

    [Theory]
    [InlineData("--text|a|--decode|1", "give exactly one of --text, --decode and --chat (got --text, --decode)")]
    [InlineData("--decode|1,x", "--decode: \"x\" is not a token id")]
    [InlineData("--decode|999999", "--decode: 999999 is not a token id")]
    [InlineData("--chat|BAD", "[1].role is missing or not a string")]
    public void Errors_AreOneLine(string args, string expected)
    {
        using var tmp = new TempDir();
        var bad = tmp.File("bad.json", """[{"role": "user", "content": "x"}, {"content": "y"}]""");
        var r = CliRunner.Run(["tokenize", "--model", TokenizerGoldens.ModelDir("llama2"), .. args.Replace("BAD", bad).Split('|')]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Equal("", r.Stdout);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("amalgam: error: ", line);
        Assert.Contains(expected, line);
    }
}
