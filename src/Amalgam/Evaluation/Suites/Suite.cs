using System.Text.Json;
using Amalgam.Evaluation.Metrics;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Amalgam.Evaluation.Suites;

/// <summary>Reads suites: suite.yaml (see docs/suites.md) and the JSONL splits of its tasks.</summary>
public static class Suite
{
    public const string FileName = "suite.yaml";

    public const string Train = "train", Validation = "validation", Test = "test";

    public static IReadOnlyList<string> Splits { get; } = [Train, Validation, Test];

    /// <summary>Loads <c>dir/suite.yaml</c>, validates it and resolves every path against <paramref name="dir"/>.</summary>
    public static SuiteDefinition Load(string dir)
    {
        string root = Path.GetFullPath(dir);
        string file = Path.Combine(root, FileName);
        if (!File.Exists(file))
            throw SuiteError.Create(FileName, null, $"not found in {root}");
        var spec = Parse(Inputs.InputFiles.ReadText(file));

        string Resolve(string relative) => Path.GetFullPath(Path.Combine(root, relative));
        var tasks = spec.Tasks.Select(t => new TaskDefinition(t.Name, t.Family, t.HeldOut, t.Metric,
            t.Expert is null ? null : Resolve(t.Expert), Resolve(t.DataOrDefault), root)).ToList();
        return new SuiteDefinition(root, spec.Name, Resolve(spec.Base), spec.PromptFormat, tasks, spec) { Chat = LoadChat(spec, Resolve(spec.Base)) };
    }

    // The base model's chat template when suite.yaml asks for one; a missing or unreadable template names the field.
    static Tokenizers.ChatTemplates.ChatTemplate? LoadChat(SuiteSpec spec, string basePath)
    {
        if (spec.ChatTemplate is not { } name) return null;
        try
        {
            return Tokenizers.ChatTemplates.ChatTemplate.Load(basePath, name == "default" ? null : name);
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException)
        {
            throw SuiteError.Create(FileName, null, $"chat_template: {e.Message}", e);
        }
    }

    /// <summary>Parses and validates the text of a suite.yaml (defaults filled in: <c>data</c> is always set).</summary>
    public static SuiteSpec Parse(string yaml)
    {
        YamlStream stream;
        try
        {
            stream = Inputs.YamlInput.Load(yaml, FileName); // size, depth and aliases bounded before the tree is built
        }
        catch (InvalidDataException e)
        {
            throw Bad(null, e.Message[(FileName.Length + 2)..], e);
        }
        if (stream.Documents.Count != 1) throw Bad(null, $"expected one YAML document, found {stream.Documents.Count}");
        if (stream.Documents[0].RootNode is not YamlMappingNode top) throw Bad(null, "the top level must be a mapping");

        var fields = Fields(top, null, SuiteRules.TopFields);
        string name = RequiredString(fields, "name", null);
        string @base = RequiredString(fields, "base", null);
        string prompt = OptionalString(fields, "prompt_format", null) ?? SuiteSpec.DefaultPromptFormat;
        if (!fields.TryGetValue("tasks", out var tasksNode) || IsNull(tasksNode)) throw Bad("tasks", "missing");
        if (tasksNode is not YamlSequenceNode taskSeq) throw Bad("tasks", "must be a list of tasks");

        var tasks = new List<TaskSpec>();
        for (int i = 0; i < taskSeq.Children.Count; i++)
        {
            string at = $"tasks[{i}]";
            if (taskSeq.Children[i] is not YamlMappingNode tm) throw Bad(at, "must be a mapping (name, family, held_out, metric, expert, data)");
            var tf = Fields(tm, at, SuiteRules.TaskFields);
            string taskName = RequiredString(tf, "name", at);
            tasks.Add(new TaskSpec(
                taskName,
                RequiredString(tf, "family", at),
                OptionalBool(tf, "held_out", at) ?? false,
                RequiredString(tf, "metric", at),
                OptionalString(tf, "expert", at),
                OptionalString(tf, "data", at) ?? $"data/{taskName}"));
        }

        var spec = new SuiteSpec(name, @base, tasks, prompt) { ChatTemplate = OptionalString(fields, "chat_template", null) };
        if (SuiteRules.Check(spec) is var (field, message)) throw Bad(field, message);
        return spec;
    }

    /// <summary>The file name of a split; anything but train, validation and test is an error.</summary>
    public static string SplitFileName(string split) =>
        Splits.Contains(split, StringComparer.Ordinal)
            ? split + ".jsonl"
            : throw new ArgumentException($"unknown split '{split}' ({string.Join(", ", Splits)})", nameof(split));

    /// <summary>Reads one split of a task; option_accuracy tasks need options on every example.</summary>
    public static IReadOnlyList<Example> LoadSplit(TaskDefinition task, string split)
    {
        ArgumentNullException.ThrowIfNull(task);
        string path = task.SplitPath(split);
        string shown = Path.GetRelativePath(task.SuiteDirectory, path).Replace('\\', '/');
        return ReadJsonl(path, shown, requireOptions: task.Metric == MetricNames.OptionAccuracy);
    }

    /// <summary>
    /// Reads a JSONL split: one <c>{"input", "target", "options"?}</c> object a line, blank lines ignored. Errors
    /// name <paramref name="shownAs"/> (default: the path) and the 1-based line.
    /// </summary>
    public static IReadOnlyList<Example> ReadJsonl(string path, string? shownAs = null, bool requireOptions = false)
    {
        shownAs ??= path;
        if (!File.Exists(path)) throw SuiteError.Create(shownAs, null, "not found");
        var examples = new List<Example>();
        int lineNo = 0;
        foreach (var line in Inputs.InputFiles.ReadLines(path, shownAs))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try { examples.Add(ParseLine(line, shownAs, lineNo, requireOptions)); }
            catch (InvalidOperationException e) // System.Text.Json on "\ud800" without its pair
            {
                throw SuiteError.Create(shownAs, lineNo, "a string holds a lone UTF-16 surrogate (an escape such as \\ud800 without its pair)", e);
            }
        }
        if (examples.Count == 0) throw SuiteError.Create(shownAs, null, "no examples");
        return examples;
    }

    /// <summary>The prompt for <paramref name="e"/>: <paramref name="promptFormat"/> with <c>{input}</c> replaced by the input.</summary>
    public static string Prompt(string promptFormat, Example e) =>
        promptFormat.Replace(SuiteSpec.InputPlaceholder, e.Input, StringComparison.Ordinal);

    private static readonly string[] LineFields = ["input", "target", "options"];

    private static Example ParseLine(string line, string file, int lineNo, bool requireOptions)
    {
        InvalidDataException Err(string m, Exception? inner = null) => SuiteError.Create(file, lineNo, m, inner);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw Err($"not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Err($"expected a JSON object, got {root.ValueKind}");
            foreach (var p in root.EnumerateObject())
                if (!LineFields.Contains(p.Name)) throw Err($"unknown field \"{p.Name}\" (known: {string.Join(", ", LineFields)})");

            string Str(string field)
            {
                if (!root.TryGetProperty(field, out var el) || el.ValueKind == JsonValueKind.Null) throw Err($"missing \"{field}\"");
                if (el.ValueKind != JsonValueKind.String) throw Err($"\"{field}\" is {el.ValueKind}, not a string");
                var s = el.GetString()!;
                if (s.Length == 0) throw Err($"\"{field}\" is empty");
                return s;
            }

            string input = Str("input"), target = Str("target");
            List<string>? options = null;
            if (root.TryGetProperty("options", out var opts) && opts.ValueKind != JsonValueKind.Null)
            {
                if (opts.ValueKind != JsonValueKind.Array) throw Err($"\"options\" is {opts.ValueKind}, not a list of strings");
                options = [];
                foreach (var o in opts.EnumerateArray())
                {
                    if (o.ValueKind != JsonValueKind.String) throw Err($"\"options[{options.Count}]\" is {o.ValueKind}, not a string");
                    var s = o.GetString()!;
                    if (s.Length == 0) throw Err($"\"options[{options.Count}]\" is empty");
                    if (options.Contains(s)) throw Err($"\"options[{options.Count}]\" repeats \"{s}\"");
                    options.Add(s);
                }
                if (options.Count < 2) throw Err($"\"options\" needs at least 2 entries, got {options.Count}");
                if (!options.Contains(target)) throw Err($"target \"{target}\" is not one of the options");
            }
            if (requireOptions && options is null) throw Err($"missing \"options\" (metric {MetricNames.OptionAccuracy} ranks the options)");
            return new Example(input, target, options) { Where = $"{file}:{lineNo}" };
        }
    }

    private static Dictionary<string, YamlNode> Fields(YamlMappingNode map, string? at, string[] known)
    {
        var result = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
        {
            string key = k is YamlScalarNode ks ? ks.Value ?? "" : throw Bad(at, "keys must be plain names");
            if (!known.Contains(key)) throw Bad(Join(at, key), $"unknown field (known: {string.Join(", ", known)})");
            if (!result.TryAdd(key, v)) throw Bad(Join(at, key), "given twice");
        }
        return result;
    }

    private static string RequiredString(Dictionary<string, YamlNode> fields, string key, string? at) =>
        OptionalString(fields, key, at) ?? throw Bad(Join(at, key), "missing");

    private static string? OptionalString(Dictionary<string, YamlNode> fields, string key, string? at)
    {
        if (!fields.TryGetValue(key, out var node) || IsNull(node)) return null;
        if (node is not YamlScalarNode s) throw Bad(Join(at, key), $"must be a string, not a {(node is YamlSequenceNode ? "list" : "mapping")}");
        return s.Value;
    }

    private static bool? OptionalBool(Dictionary<string, YamlNode> fields, string key, string? at)
    {
        if (!fields.TryGetValue(key, out var node) || IsNull(node)) return null;
        if (node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } s)
        {
            if (s.Value == "true") return true;
            if (s.Value == "false") return false;
        }
        throw Bad(Join(at, key), $"must be true or false, got {Describe(node)}");
    }

    /// <summary>A plain (unquoted) <c>null</c>, <c>~</c> or nothing at all.</summary>
    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } s && s.Value is null or "" or "~" or "null" or "Null" or "NULL";

    private static string Describe(YamlNode node) => node switch
    {
        YamlScalarNode s => $"'{s.Value}'",
        YamlSequenceNode => "a list",
        _ => "a mapping",
    };

    private static string Join(string? at, string key) => at is null ? key : $"{at}.{key}";

    private static InvalidDataException Bad(string? field, string message, Exception? inner = null) =>
        SuiteError.Create(FileName, null, field is null ? message : $"{field}: {message}", inner);
}
