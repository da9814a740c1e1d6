using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Amalgam.Tokenizers.ChatTemplates;

/// <summary>
/// A model's chat template, rendered as transformers' <c>apply_chat_template</c> renders it: Jinja with
/// trim_blocks and lstrip_blocks, the globals <c>raise_exception</c>, <c>strftime_now</c> and <c>namespace</c>,
/// transformers' <c>tojson</c>, and the variables <c>messages</c>, <c>tools</c> = None, <c>documents</c> = None,
/// <c>add_generation_prompt</c> and the special tokens of tokenizer_config.json (bos_token, eos_token, ...).
/// </summary>
public sealed class ChatTemplate
{
    public const string TemplateFileName = "chat_template.jinja";
    private const string ConfigFileName = "tokenizer_config.json";
    private static readonly string[] SpecialTokenFields = ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"];

    private readonly IReadOnlyList<Node> _nodes;
    private readonly IReadOnlyDictionary<string, object?> _specialTokens;

    private ChatTemplate(IReadOnlyList<Node> nodes, IReadOnlyDictionary<string, object?> specialTokens, string source)
    {
        _nodes = nodes;
        _specialTokens = specialTokens;
        Source = source;
    }

    /// <summary>Where the template came from (a file, or "FILE: chat_template").</summary>
    public string Source { get; }

    /// <summary>The text of tokenizer_config.json's bos_token, as templates see it (null when it has none).</summary>
    public string? BosToken => _specialTokens.GetValueOrDefault("bos_token") as string;

    /// <summary>
    /// The template of a model folder: <c>chat_template.jinja</c> when present (as transformers prefers it), else
    /// tokenizer_config.json's <c>chat_template</c>, a string or a list of <c>{"name", "template"}</c> from which
    /// <paramref name="name"/> (default "default") is taken. Special tokens come from tokenizer_config.json.
    /// Throws <see cref="FileNotFoundException"/> when the folder has no template and <see cref="InvalidDataException"/>
    /// naming the file when it is malformed or uses a construct outside the supported subset.
    /// </summary>
    public static ChatTemplate Load(string modelDir, string? name = null)
    {
        var configPath = Path.Combine(modelDir, ConfigFileName);
        JsonDocument? config = null;
        if (File.Exists(configPath)) config = TokenizerJson.Parse(configPath);
        using (config)
        {
            var root = config?.RootElement ?? default;
            if (config is not null && root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{configPath}: the top level must be a JSON object");
            var specials = config is null ? new Dictionary<string, object?>() : SpecialTokens(root, configPath);

            var jinjaPath = Path.Combine(modelDir, TemplateFileName);
            if (File.Exists(jinjaPath)) return Parse(Inputs.InputFiles.ReadTextInFolder(jinjaPath), specials, jinjaPath);
            if (config is null || !root.TryGetProperty("chat_template", out var t) || t.ValueKind == JsonValueKind.Null)
                throw new FileNotFoundException($"{modelDir}: no chat template (no {TemplateFileName} and no chat_template in {ConfigFileName})", configPath);
            var at = $"{configPath}: chat_template";
            if (t.ValueKind == JsonValueKind.String) return Parse(t.GetString()!, specials, at);
            if (t.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{at} must be a string or a list of {{\"name\", \"template\"}}");
            var wanted = name ?? "default";
            var names = new List<string>();
            foreach (var item in t.EnumerateArray())
            {
                var n = TokenizerJson.StringOrNull(item, "name", configPath, "chat_template[].");
                var body = TokenizerJson.StringOrNull(item, "template", configPath, "chat_template[].");
                if (n is null || body is null) throw new InvalidDataException($"{at}: every entry needs a name and a template");
                if (n == wanted) return Parse(body, specials, $"{at}[\"{n}\"]");
                names.Add(n);
            }
            throw new InvalidDataException($"{at} has no template named \"{wanted}\" (has: {string.Join(", ", names)})");
        }
    }

    /// <summary>
    /// The template in <paramref name="templateFile"/> (Jinja source, e.g. a server's <c>--chat-template FILE</c>)
    /// with the special tokens of <paramref name="modelDir"/>'s tokenizer_config.json, when it has one.
    /// </summary>
    public static ChatTemplate FromFile(string templateFile, string modelDir)
    {
        if (!File.Exists(templateFile)) throw new FileNotFoundException($"{templateFile}: file does not exist", templateFile);
        var configPath = Path.Combine(modelDir, ConfigFileName);
        if (!File.Exists(configPath)) return Parse(File.ReadAllText(templateFile), new Dictionary<string, object?>(), templateFile);
        using var config = TokenizerJson.Parse(configPath);
        if (config.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{configPath}: the top level must be a JSON object");
        return Parse(File.ReadAllText(templateFile), SpecialTokens(config.RootElement, configPath), templateFile);
    }

    /// <summary>A template from its source text; <paramref name="specialTokens"/> maps e.g. bos_token to its text (or null).</summary>
    public static ChatTemplate Parse(string template, IReadOnlyDictionary<string, object?> specialTokens, string source = "(template)")
    {
        try
        {
            return new ChatTemplate(TemplateParser.Parse(template), specialTokens, source);
        }
        catch (TemplateException e)
        {
            throw new InvalidDataException($"{source}: {e.Message}", e);
        }
    }

    /// <summary>Renders a conversation given as simple role/content pairs.</summary>
    public string Render(IEnumerable<(string Role, string Content)> messages, bool addGenerationPrompt, DateTime? now = null)
    {
        var list = messages.Select(m => (object?)new OrderedDictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList();
        return RenderValues(list, addGenerationPrompt, null, now);
    }

    /// <summary>
    /// Renders <paramref name="messages"/>, a JSON array of message objects (role, content and whatever else the
    /// template reads: tool_calls, reasoning_content, content parts). <paramref name="variables"/> are extra template
    /// variables (e.g. enable_thinking). <paramref name="now"/> is what strftime_now formats (default: the local time).
    /// A template error, including the template's own raise_exception, is a <see cref="TemplateException"/>.
    /// </summary>
    public string Render(JsonElement messages, bool addGenerationPrompt, IReadOnlyDictionary<string, JsonElement>? variables = null, DateTime? now = null)
    {
        if (messages.ValueKind != JsonValueKind.Array) throw new ArgumentException("messages must be a JSON array", nameof(messages));
        var extra = variables?.ToDictionary(kv => kv.Key, kv => TemplateValues.FromJson(kv.Value));
        return RenderValues((List<object?>)TemplateValues.FromJson(messages)!, addGenerationPrompt, extra, now);
    }

    private string RenderValues(List<object?> messages, bool addGenerationPrompt, Dictionary<string, object?>? extra, DateTime? now)
    {
        var clock = now ?? DateTime.Now;
        var globals = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["raise_exception"] = (TemplateFunction)((a, _) => throw new TemplateException(a.Count > 0 ? TemplateValues.Str(a[0]) : "")),
            ["strftime_now"] = (TemplateFunction)((a, _) => Strftime(clock, a.Count > 0 ? TemplateValues.Str(a[0]) : "")),
            ["namespace"] = (TemplateFunction)((_, kw) => { var ns = new Namespace(); foreach (var (k, v) in kw) ns.Values[k] = v; return ns; }),
            ["range"] = (TemplateFunction)Range,
        };
        foreach (var (k, v) in _specialTokens) globals[k] = v;
        if (extra is not null) foreach (var (k, v) in extra) globals[k] = v;
        globals["messages"] = messages;
        globals["tools"] = null;
        globals["documents"] = null;
        globals["add_generation_prompt"] = addGenerationPrompt;
        return TemplateRenderer.Render(_nodes, globals);
    }

    private static object? Range(List<object?> a, Dictionary<string, object?> _)
    {
        long start = 0, stop, step = 1;
        if (a is [long only]) stop = only;
        else if (a is [long s, long e]) (start, stop) = (s, e);
        else if (a is [long s3, long e3, long st]) (start, stop, step) = (s3, e3, st);
        else throw new TemplateException("range() takes one to three integers");
        if (step == 0) throw new TemplateException("range() arg 3 must not be zero");
        var list = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) list.Add(i);
        return list;
    }

    private static Dictionary<string, object?> SpecialTokens(JsonElement root, string path)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var field in SpecialTokenFields)
            if (root.TryGetProperty(field, out var v)) result[field] = TokenText(v, field, path);
        if (root.TryGetProperty("additional_special_tokens", out var extra) && extra.ValueKind == JsonValueKind.Array)
            result["additional_special_tokens"] = extra.EnumerateArray().Select(e => (object?)TokenText(e, "additional_special_tokens[]", path)).ToList();
        return result;
    }

    private static string? TokenText(JsonElement v, string field, string path) => v.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
        _ => throw new InvalidDataException($"{path}: {field} must be a string, an object with content, or null"),
    };

    /// <summary>Python's strftime for the directives chat templates use (C locale).</summary>
    internal static string Strftime(DateTime t, string format)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            char d = format[++i];
            sb.Append(d switch
            {
                'd' => t.ToString("dd", inv),
                'm' => t.ToString("MM", inv),
                'Y' => t.ToString("yyyy", inv),
                'y' => t.ToString("yy", inv),
                'b' => t.ToString("MMM", inv),
                'B' => t.ToString("MMMM", inv),
                'a' => t.ToString("ddd", inv),
                'A' => t.ToString("dddd", inv),
                'H' => t.ToString("HH", inv),
                'I' => t.ToString("hh", inv),
                'M' => t.ToString("mm", inv),
                'S' => t.ToString("ss", inv),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => t.DayOfYear.ToString("000", inv),
                'e' => t.Day.ToString(inv).PadLeft(2),
                '%' => "%",
                _ => throw new TemplateException($"strftime_now: the directive %{d} is not supported"),
            });
        }
        return sb.ToString();
    }
}
