namespace Amalgam.Tests.Evaluation.Suites;

// Inside the namespace: Amalgam.Tests.Bundled (a namespace) would otherwise hide the Suite class.
using Amalgam.Evaluation.Suites;

public class SuiteFormatTests
{
    private const string Valid = """
        name: demo
        base: base
        tasks:
          - name: a
            family: f
            metric: exact_match
            expert: experts/a
          - name: h
            family: f
            held_out: true
            metric: option_accuracy
        """;

    private static SuiteDefinition LoadYaml(TestData.TempDir tmp, string yaml)
    {
        File.WriteAllText(tmp["suite.yaml"], yaml);
        return Suite.Load(tmp.Path);
    }

    [Fact]
    public void Load_ResolvesPathsAndFillsDefaults()
    {
        using var tmp = new TestData.TempDir();
        var s = LoadYaml(tmp, Valid);
        Assert.Equal("demo", s.Name);
        Assert.Equal(tmp.Path, s.Directory);
        Assert.Equal(tmp["base"], s.BasePath);
        Assert.Equal("{input}\nAnswer: ", s.PromptFormat);
        Assert.Equal(2, s.Tasks.Count);
        var a = s.Task("a");
        Assert.Equal(("a", "f", false, "exact_match"), (a.Name, a.Family, a.HeldOut, a.Metric));
        Assert.Equal(Path.Combine(tmp.Path, "experts", "a"), a.ExpertPath);
        Assert.Equal(Path.Combine(tmp.Path, "data", "a"), a.DataPath);
        var h = s.Task("h");
        Assert.True(h.HeldOut);
        Assert.Null(h.ExpertPath);
        Assert.Equal("option_accuracy", h.Metric);
        Assert.Equal(["a"], s.HeldIn.Select(t => t.Name));
        Assert.Equal(["h"], s.HeldOut.Select(t => t.Name));
        Assert.Equal(Path.Combine(tmp.Path, "data", "a", "test.jsonl"), a.SplitPath("test"));
        Assert.Throws<ArgumentException>(() => s.Task("nope"));
    }

    [Fact]
    public void Load_ExplicitDataPromptAndNullExpert()
    {
        using var tmp = new TestData.TempDir();
        var s = LoadYaml(tmp, """
            name: demo
            base: ../shared/base
            prompt_format: "Q: {input}\nA:"
            tasks:
              - {name: h, family: f, held_out: true, metric: exact_match, expert: null, data: ../shared/h}
              - {name: a, family: f, held_out: false, metric: exact_match, expert: ex/a}
            """);
        Assert.Equal("Q: {input}\nA:", s.PromptFormat);
        Assert.Equal(Path.GetFullPath(Path.Combine(tmp.Path, "..", "shared", "base")), s.BasePath);
        Assert.Equal(Path.GetFullPath(Path.Combine(tmp.Path, "..", "shared", "h")), s.Task("h").DataPath);
        Assert.Null(s.Task("h").ExpertPath);
        Assert.Equal("Q: What comes after 3?\nA:", s.Prompt(new Example("What comes after 3?", "4")));
    }

    [Fact]
    public void Prompt_DefaultFormat_InsertsInputOnce()
    {
        Assert.Equal("Spell \"cat\" backwards.\nAnswer: ",
            Suite.Prompt(SuiteSpec.DefaultPromptFormat, new Example("Spell \"cat\" backwards.", "tac")));
        // An input that itself contains the placeholder is not expanded again.
        Assert.Equal("say {input}\nAnswer: ", Suite.Prompt(SuiteSpec.DefaultPromptFormat, new Example("say {input}", "x")));
    }

    [Fact]
    public void RoundTrip_WriterThenLoader()
    {
        using var tmp = new TestData.TempDir();
        var spec = new SuiteSpec("round trip", "models/base", [
            new TaskSpec("first_letter", "letters", false, "exact_match", "experts/first_letter"),
            new TaskSpec("null", "odd: family # with yaml characters", false, "exact_match", "experts/null", "data/custom place"),
            new TaskSpec("choice", "numbers", true, "option_accuracy", null),
        ], "Question: {input}\n\tAnswer: \"");
        SuiteWriter.WriteSuiteYaml(tmp.Path, spec);
        var back = Suite.Load(tmp.Path);

        Assert.Equal(spec.Name, back.Spec.Name);
        Assert.Equal(spec.Base, back.Spec.Base);
        Assert.Equal(spec.PromptFormat, back.Spec.PromptFormat);
        Assert.Equal(spec.Tasks.Select(t => t with { Data = t.DataOrDefault }), back.Spec.Tasks);
        Assert.Equal(Path.Combine(tmp.Path, "data", "custom place"), back.Task("null").DataPath);
        Assert.Equal(Path.Combine(tmp.Path, "experts", "null"), back.Task("null").ExpertPath);
        // Writing what was read gives the same text.
        Assert.Equal(File.ReadAllText(tmp["suite.yaml"]), SuiteWriter.ToYaml(back.Spec));
        Assert.Empty(Directory.GetFiles(tmp.Path, ".*")); // no temporary file left behind
    }

    [Fact]
    public void Writer_RefusesAnInvalidSpec()
    {
        using var tmp = new TestData.TempDir();
        var spec = new SuiteSpec("x", "base", [new TaskSpec("a", "f", true, "exact_match", "experts/a")]);
        var e = Assert.Throws<InvalidDataException>(() => SuiteWriter.WriteSuiteYaml(tmp.Path, spec));
        Assert.Equal("suite.yaml: tasks[0].expert: held-out task 'a' must not have an expert (got 'experts/a')", e.Message);
        Assert.False(File.Exists(tmp["suite.yaml"]));
    }

    public static TheoryData<string, string, string> BadYaml => new()
    {
        // (text to replace in Valid, replacement, expected message)
        { "metric: option_accuracy", "metric: f1", "suite.yaml: tasks[1].metric: unknown metric 'f1' (exact_match, option_accuracy)" },
        { "name: h", "name: a", "suite.yaml: tasks[1].name: duplicate task name 'a' (also tasks[0])" },
        { "held_out: true", "held_out: true\n    expert: experts/h", "suite.yaml: tasks[1].expert: held-out task 'h' must not have an expert (got 'experts/h')" },
        { "    expert: experts/a\n", "", "suite.yaml: tasks[0].expert: held-in task 'a' needs an expert path" },
        { "name: demo\n", "", "suite.yaml: name: missing" },
        { "base: base\n", "", "suite.yaml: base: missing" },
        { "base: base", "base: base\nbases: b", "suite.yaml: bases: unknown field (known: name, base, prompt_format, chat_template, tasks)" },
        { "family: f\n    metric: exact_match", "family: f\n    heldout: false\n    metric: exact_match", "suite.yaml: tasks[0].heldout: unknown field (known: name, family, held_out, metric, expert, data)" },
        { "held_out: true", "held_out: yes", "suite.yaml: tasks[1].held_out: must be true or false, got 'yes'" },
        { "held_out: true", "held_out: \"true\"", "suite.yaml: tasks[1].held_out: must be true or false, got 'true'" },
        { "base: base", "base: base\nprompt_format: \"{text}\\nAnswer: \"", "suite.yaml: prompt_format: must contain {input}" },
        { "name: a\n", "name: a/b\n", "suite.yaml: tasks[0].name: 'a/b' must use only letters, digits, '_' and '-' (it names a folder)" },
        { "family: f\n    metric: exact_match", "metric: exact_match", "suite.yaml: tasks[0].family: missing" },
        { "    metric: exact_match\n", "", "suite.yaml: tasks[0].metric: missing" },
        { "name: demo", "name: [demo]", "suite.yaml: name: must be a string, not a list" },
        { "base: base", "base: \"\"", "suite.yaml: base: must not be empty" },
        { "  - name: h", "  - plain\n  - name: h", "suite.yaml: tasks[1]: must be a mapping (name, family, held_out, metric, expert, data)" },
    };

    [Theory]
    [MemberData(nameof(BadYaml))]
    public void Load_RefusesWithOneLineNamingTheField(string find, string replace, string expected)
    {
        Assert.Contains(find, Valid);
        using var tmp = new TestData.TempDir();
        var e = Assert.Throws<InvalidDataException>(() => LoadYaml(tmp, Valid.Replace(find, replace)));
        Assert.Equal(expected, e.Message);
    }

    [Theory]
    [InlineData("name: x\nbase: b\n", "suite.yaml: tasks: missing")]
    [InlineData("name: x\nbase: b\ntasks: []\n", "suite.yaml: tasks: must list at least one task")]
    [InlineData("name: x\nbase: b\ntasks: 3\n", "suite.yaml: tasks: must be a list of tasks")]
    [InlineData("- a\n- b\n", "suite.yaml: the top level must be a mapping")]
    [InlineData("", "suite.yaml: expected one YAML document, found 0")]
    public void Load_RefusesBadStructure(string yaml, string expected)
    {
        using var tmp = new TestData.TempDir();
        Assert.Equal(expected, Assert.Throws<InvalidDataException>(() => LoadYaml(tmp, yaml)).Message);
    }

    [Fact]
    public void Load_RefusesInvalidYamlAndMissingFile()
    {
        using var tmp = new TestData.TempDir();
        var e = Assert.Throws<InvalidDataException>(() => LoadYaml(tmp, "name: [unclosed\nbase: b\n"));
        Assert.StartsWith("suite.yaml: not valid YAML (", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        e = Assert.Throws<InvalidDataException>(() => LoadYaml(tmp, Valid.Replace("name: demo", "name: demo\nname: again")));
        Assert.StartsWith("suite.yaml: not valid YAML (line 2: Duplicate key", e.Message);

        File.Delete(tmp["suite.yaml"]);
        e = Assert.Throws<InvalidDataException>(() => Suite.Load(tmp.Path));
        Assert.Equal($"suite.yaml: not found in {tmp.Path}", e.Message);
    }

    // ---- JSONL splits ----

    private static (SuiteDefinition Suite, string Dir) WithSplit(TestData.TempDir tmp, string task, string split, string content)
    {
        var s = LoadYaml(tmp, Valid);
        var dir = Path.Combine(tmp.Path, "data", task);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, split + ".jsonl"), content);
        return (s, dir);
    }

    [Fact]
    public void LoadSplit_ReadsExamplesSkippingBlankLines()
    {
        using var tmp = new TestData.TempDir();
        var (s, _) = WithSplit(tmp, "a", "test",
            "{\"input\": \"Spell \\\"cat\\\" backwards.\", \"target\": \"tac\"}\n\n   \r\n{\"target\": \"b\", \"input\": \"é 😀\", \"options\": null}\n");
        var examples = s.LoadSplit("a", "test");
        Assert.Equal([new Example("Spell \"cat\" backwards.", "tac"), new Example("é 😀", "b")], examples);

        var (_, _) = WithSplit(tmp, "h", "validation", "{\"input\": \"Which is larger, 3 or 12?\", \"target\": \"12\", \"options\": [\"3\", \"12\"]}\n");
        var h = s.LoadSplit(s.Task("h"), "validation");
        Assert.Equal([new Example("Which is larger, 3 or 12?", "12", ["3", "12"])], h);
    }

    public static TheoryData<string, string, string> BadLines => new()
    {
        // (task, line 3 of the file, expected message); lines 1-2 are a valid line and a blank line
        { "a", "{\"input\": \"x\"}", "data/a/test.jsonl:3: missing \"target\"" },
        { "a", "{\"target\": \"x\"}", "data/a/test.jsonl:3: missing \"input\"" },
        { "a", "{\"input\": \"x\", \"target\": 3}", "data/a/test.jsonl:3: \"target\" is Number, not a string" },
        { "a", "{\"input\": \"\", \"target\": \"x\"}", "data/a/test.jsonl:3: \"input\" is empty" },
        { "a", "{\"input\": \"x\", \"target\": \"y\", \"label\": 1}", "data/a/test.jsonl:3: unknown field \"label\" (known: input, target, options)" },
        { "a", "[1, 2]", "data/a/test.jsonl:3: expected a JSON object, got Array" },
        { "a", "{\"input\": \"x\", \"target\": \"y\", \"options\": [\"a\", \"b\"]}", "data/a/test.jsonl:3: target \"y\" is not one of the options" },
        { "a", "{\"input\": \"x\", \"target\": \"a\", \"options\": [\"a\"]}", "data/a/test.jsonl:3: \"options\" needs at least 2 entries, got 1" },
        { "a", "{\"input\": \"x\", \"target\": \"a\", \"options\": [\"a\", \"a\"]}", "data/a/test.jsonl:3: \"options[1]\" repeats \"a\"" },
        { "a", "{\"input\": \"x\", \"target\": \"a\", \"options\": [\"a\", 2]}", "data/a/test.jsonl:3: \"options[1]\" is Number, not a string" },
        { "a", "{\"input\": \"x\", \"target\": \"a\", \"options\": \"a\"}", "data/a/test.jsonl:3: \"options\" is String, not a list of strings" },
        { "h", "{\"input\": \"x\", \"target\": \"a\"}", "data/h/test.jsonl:3: missing \"options\" (metric option_accuracy ranks the options)" },
    };

    [Theory]
    [MemberData(nameof(BadLines))]
    public void LoadSplit_RefusesBadLineWithFileAndLineNumber(string task, string line, string expected)
    {
        using var tmp = new TestData.TempDir();
        string good = task == "h"
            ? "{\"input\": \"i\", \"target\": \"1\", \"options\": [\"1\", \"2\"]}"
            : "{\"input\": \"i\", \"target\": \"t\"}";
        var (s, _) = WithSplit(tmp, task, "test", $"{good}\n\n{line}\n{good}\n");
        Assert.Equal(expected, Assert.Throws<InvalidDataException>(() => s.LoadSplit(task, "test")).Message);
    }

    [Fact]
    public void LoadSplit_RefusesInvalidJsonMissingFileEmptyFileAndUnknownSplit()
    {
        using var tmp = new TestData.TempDir();
        var (s, dir) = WithSplit(tmp, "a", "train", "{\"input\": \"i\", \"target\": \"t\"}\n{\"input\": \"i\",\n");
        var e = Assert.Throws<InvalidDataException>(() => s.LoadSplit("a", "train"));
        Assert.StartsWith("data/a/train.jsonl:2: not valid JSON (", e.Message);

        e = Assert.Throws<InvalidDataException>(() => s.LoadSplit("a", "validation"));
        Assert.Equal("data/a/validation.jsonl: not found", e.Message);

        File.WriteAllText(Path.Combine(dir, "test.jsonl"), "\n\n");
        e = Assert.Throws<InvalidDataException>(() => s.LoadSplit("a", "test"));
        Assert.Equal("data/a/test.jsonl: no examples", e.Message);

        var a = Assert.Throws<ArgumentException>(() => s.LoadSplit("a", "dev"));
        Assert.StartsWith("unknown split 'dev' (train, validation, test)", a.Message);
    }

    [Fact]
    public void WriteSplit_RoundTripsAndIsOneObjectPerLine()
    {
        using var tmp = new TestData.TempDir();
        Example[] examples =
        [
            new("Spell the word \"cat\" backwards.", "tac"),
            new("Which is larger, 3 or 12?", "12", ["12", "3"]),
            new("tab\tnewline\nback\\slash é", "x"),
        ];
        string path = Path.Combine(tmp.Path, "deep", "er", "test.jsonl");
        SuiteWriter.WriteSplit(path, examples);
        var lines = File.ReadAllLines(path);
        Assert.Equal(3, lines.Length);
        Assert.Equal("{\"input\":\"Spell the word \\\"cat\\\" backwards.\",\"target\":\"tac\"}", lines[0]);
        Assert.Equal("{\"input\":\"Which is larger, 3 or 12?\",\"target\":\"12\",\"options\":[\"12\",\"3\"]}", lines[1]);
        Assert.Equal(examples, Suite.ReadJsonl(path));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, ".*"));
    }
}

public class SuiteChatTemplateTests
{
    static readonly string ChatDir = Path.Combine(TestData.RepoRoot, "tests", "Golden", "tokenizers", "chat");

    // The reference text jinja2 rendered (tests/Golden/tokenizers/chat) for one user message "Hello!" with the generation prompt.
    static string Golden(string template)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(ChatDir, "goldens.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray()
            .First(c => c.GetProperty("template").GetString() == template && c.GetProperty("conversation").GetString() == "single"
                        && c.GetProperty("add_generation_prompt").GetBoolean())
            .GetProperty("text").GetString()!;
    }

    static SuiteDefinition SuiteWithTemplate(TestData.TempDir tmp, string template, string? bos, string chatField = "default")
    {
        Directory.CreateDirectory(tmp["base"]);
        File.Copy(Path.Combine(ChatDir, "templates", template + ".jinja"), Path.Combine(tmp["base"], "chat_template.jinja"));
        File.WriteAllText(Path.Combine(tmp["base"], "tokenizer_config.json"),
            System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string?> { ["bos_token"] = bos, ["eos_token"] = "</s>" }));
        File.WriteAllText(tmp["suite.yaml"], $"""
            name: chat
            base: base
            prompt_format: "{"{input}"}"
            chat_template: {chatField}
            tasks:
              - {"{name: a, family: f, metric: exact_match, expert: experts/a}"}
            """);
        return Suite.Load(tmp.Path);
    }

    [Theory]
    [InlineData("llama3_1", "<|begin_of_text|>")]
    [InlineData("gemma3", "<bos>")]
    [InlineData("mistral", "<s>")]
    public void Prompts_are_one_user_message_through_the_base_models_template_with_its_BOS_left_to_the_encoder(string template, string bos)
    {
        using var tmp = new TestData.TempDir();
        var suite = SuiteWithTemplate(tmp, template, bos);
        var golden = Golden(template);
        Assert.StartsWith(bos, golden);
        Assert.Equal(golden[bos.Length..], suite.Prompt(new Example("Hello!", "x")));
    }

    [Fact]
    public void A_template_without_BOS_is_used_as_rendered_and_the_field_round_trips()
    {
        using var tmp = new TestData.TempDir();
        var suite = SuiteWithTemplate(tmp, "qwen3", null);
        Assert.Equal(Golden("qwen3"), suite.Prompt(new Example("Hello!", "x")));
        Assert.Equal("default", suite.Spec.ChatTemplate);
        Assert.Contains("chat_template: \"default\"", SuiteWriter.ToYaml(suite.Spec));
    }

    [Fact]
    public void A_base_without_a_template_is_refused_naming_the_field()
    {
        using var tmp = new TestData.TempDir();
        Directory.CreateDirectory(tmp["base"]);
        File.WriteAllText(tmp["suite.yaml"], "name: c\nbase: base\nchat_template: default\ntasks:\n  - {name: a, family: f, metric: exact_match, expert: e}\n");
        var e = Assert.Throws<InvalidDataException>(() => Suite.Load(tmp.Path));
        Assert.Contains("suite.yaml: chat_template: ", e.Message);
        Assert.Contains("no chat template", e.Message);
    }
}
