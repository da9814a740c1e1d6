using System.Text.Json;
using Amalgam.Tokenizers.ChatTemplates;

namespace Amalgam.Tests.Tokenizers;

/// <summary>
/// Chat templates of Llama 3, Llama 3.2, Qwen2.5, Qwen3, Gemma 3, Mistral and Phi-3 rendered byte for byte as Python's
/// jinja2 renders them set up the way transformers sets it up (tests/Golden/tokenizers/chat/generate_chat_goldens.py):
/// 13 conversations, each with and without the generation prompt; the template's own errors with the same message.
/// </summary>
public class ChatTemplateTests
{
    private static readonly string ChatDir = Path.Combine(TestData.RepoRoot, "tests", "Golden", "tokenizers", "chat");
    private static readonly Lazy<JsonDocument> Goldens = new(() => JsonDocument.Parse(File.ReadAllText(Path.Combine(ChatDir, "goldens.json"))));

    private static ChatTemplate Template(string name)
    {
        var specials = Goldens.Value.RootElement.GetProperty("special_tokens").GetProperty(name)
            .EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.GetString());
        var path = Path.Combine(ChatDir, "templates", name + ".jinja");
        return ChatTemplate.Parse(File.ReadAllText(path), specials, path);
    }

    private static readonly DateTime Now = new(2026, 1, 15, 9, 30, 0);

    [Theory]
    [InlineData("llama3")]
    [InlineData("llama3_1")]
    [InlineData("llama3_2")]
    [InlineData("qwen2_5")]
    [InlineData("qwen3")]
    [InlineData("gemma3")]
    [InlineData("mistral")]
    [InlineData("phi3")]
    public void RendersLikeJinja2(string name)
    {
        var template = Template(name);
        var root = Goldens.Value.RootElement;
        var cases = root.GetProperty("cases").EnumerateArray().Where(c => c.GetProperty("template").GetString() == name).ToList();
        Assert.Equal(26, cases.Count);
        var failures = new List<string>();
        foreach (var c in cases)
        {
            var conversation = c.GetProperty("conversation").GetString()!;
            var agp = c.GetProperty("add_generation_prompt").GetBoolean();
            var messages = root.GetProperty("conversations").GetProperty(conversation);
            string label = $"{conversation} (add_generation_prompt={agp})";
            try
            {
                var text = template.Render(messages, agp, now: Now);
                if (!c.TryGetProperty("text", out var expected)) failures.Add($"{label}: rendered, jinja2 raised an error");
                else if (text != expected.GetString())
                    failures.Add($"{label}:\n--- expected\n{expected.GetString()}\n--- got\n{text}");
            }
            catch (TemplateException e)
            {
                if (c.TryGetProperty("text", out _)) failures.Add($"{label}: threw \"{e.Message}\", jinja2 rendered");
                else if (c.TryGetProperty("error", out var message) && message.GetString() != e.Message)
                    failures.Add($"{label}: error \"{e.Message}\", jinja2 said \"{message.GetString()}\"");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} differ:\n" + string.Join("\n", failures));
    }

    [Fact]
    public void Load_ReadsTokenizerConfig_AndSpecialTokens()
    {
        var template = ChatTemplate.Load(TokenizerGoldens.ModelDir("gemma3"));
        Assert.Equal("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", template.Render([("user", " Hi ")], addGenerationPrompt: true));
    }

    [Fact]
    public void Load_PrefersChatTemplateJinja_AndNamedTemplates()
    {
        using var dir = new TempDir();
        dir.File("tokenizer_config.json", """
            {"bos_token": {"content": "<s>"}, "chat_template": [
              {"name": "tool_use", "template": "tools"},
              {"name": "default", "template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"}]}
            """);
        Assert.Equal("<s>[user]hi", ChatTemplate.Load(dir.Path).Render([("user", "hi")], false));
        Assert.Equal("tools", ChatTemplate.Load(dir.Path, "tool_use").Render([("user", "hi")], false));
        var missing = Assert.Throws<InvalidDataException>(() => ChatTemplate.Load(dir.Path, "rag"));
        Assert.Contains("has no template named \"rag\" (has: tool_use, default)", missing.Message);
        dir.File(ChatTemplate.TemplateFileName, "{{ messages | length }} {{ bos_token }}\n");
        Assert.Equal("1 <s>\n", ChatTemplate.Load(dir.Path).Render([("user", "hi")], false));
    }

    [Theory]
    [InlineData("{% macro m() %}x{% endmacro %}", "the statement 'macro' is not supported")]
    [InlineData("{{ x | wordwrap }}", "the filter 'wordwrap' is not supported")]
    [InlineData("{% if x is divisibleby3 %}{% endif %}", "the test 'divisibleby3' is not supported")]
    [InlineData("{% for x in y %}", "template ends before {% endfor %}")]
    [InlineData("{% set x %}a{% endset %}", "block set")]
    public void Unsupported_IsRefusedNamingTheConstruct(string source, string expected)
    {
        var e = Record.Exception(() => ChatTemplate.Parse(source, new Dictionary<string, object?>(), "t.jinja").Render([("user", "hi")], false));
        Assert.NotNull(e);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b'.split() | length }}", "a b|a|['a', 'b', '', 'c']|2")]
    [InlineData("{{ [1, 2, 3][::-1] }}{{ 'abc'[1:] }}{{ [1, 2, 3][-1] }}", "[3, 2, 1]bc3")]
    [InlineData("{{ {'b': 1, 'a': [true, none, 1.5]} | tojson }}|{{ {'a': 'é\"'} | tojson(indent=2) }}", "{\"b\": 1, \"a\": [true, null, 1.5]}|{\n  \"a\": \"é\\\"\"\n}")]
    [InlineData("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% set local = i %}{% endfor %}{{ ns.n }}{{ local is defined }}", "6False")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }}{% if not loop.last %},{% endif %}{% endfor %}", "a=1,b=2")]
    [InlineData("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 1 ~ none }}", "3 -4 1 2 3.5 1None")]
    [InlineData("  {%- if true %}\n  x\n  {% endif %}\n  {{ 'y' }}", "  x\n  y")]
    public void Builtins_MatchPython(string source, string expected) =>
        Assert.Equal(expected, ChatTemplate.Parse(source, new Dictionary<string, object?>()).Render([("user", "hi")], false));
}
