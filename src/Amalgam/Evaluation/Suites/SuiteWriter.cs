using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Amalgam.Tensors;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Amalgam.Evaluation.Suites;

/// <summary>
/// Writes suite.yaml and JSONL splits. Every file is written atomically (a hidden temporary file in the same folder,
/// renamed over the final name), so a reader sees the old file or the complete new one. Other files in the suite
/// folder (the base checkpoint, experts) are left alone.
/// </summary>
public static class SuiteWriter
{
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Validates <paramref name="spec"/> with the loader's rules and writes <c>dir/suite.yaml</c>.</summary>
    public static void WriteSuiteYaml(string dir, SuiteSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (SuiteRules.Check(spec) is var (field, message))
            throw SuiteError.Create(Suite.FileName, null, $"{field}: {message}");
        Directory.CreateDirectory(dir);
        WriteText(Path.Combine(dir, Suite.FileName), ToYaml(spec));
    }

    /// <summary>The text of suite.yaml for <paramref name="spec"/> (not validated).</summary>
    public static string ToYaml(SuiteSpec spec)
    {
        static YamlScalarNode Plain(string v) => new(v) { Style = ScalarStyle.Plain };
        static YamlScalarNode Quoted(string v) => new(v) { Style = ScalarStyle.DoubleQuoted };

        var tasks = new YamlSequenceNode();
        foreach (var t in spec.Tasks)
        {
            var m = new YamlMappingNode
            {
                { "name", Quoted(t.Name) },
                { "family", Quoted(t.Family) },
                { "held_out", Plain(t.HeldOut ? "true" : "false") },
                { "metric", Quoted(t.Metric) },
            };
            if (t.Expert is not null) m.Add("expert", Quoted(t.Expert));
            m.Add("data", Quoted(t.DataOrDefault));
            tasks.Add(m);
        }
        var root = new YamlMappingNode
        {
            { "name", Quoted(spec.Name) },
            { "base", Quoted(spec.Base) },
            { "prompt_format", Quoted(spec.PromptFormat) },
        };
        if (spec.ChatTemplate is not null) root.Add("chat_template", Quoted(spec.ChatTemplate));
        root.Add("tasks", tasks);
        var sb = new StringBuilder();
        using (var w = new StringWriter(sb) { NewLine = "\n" })
            new YamlStream(new YamlDocument(root)).Save(w, assignAnchors: false);
        // YamlDotNet ends the document with "...": harmless, but noisy in a hand-edited file.
        var text = sb.ToString().Replace("\r\n", "\n");
        if (text.EndsWith("...\n", StringComparison.Ordinal)) text = text[..^4];
        return text;
    }

    /// <summary>Writes one split: one JSON object a line, <c>\n</c> line ends, UTF-8 without a byte order mark.</summary>
    public static void WriteSplit(string path, IEnumerable<Example> examples)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var sb = new StringBuilder();
        foreach (var e in examples) sb.Append(ToJsonLine(e)).Append('\n');
        WriteText(path, sb.ToString());
    }

    /// <summary>One JSONL line (no line end): <c>{"input":...,"target":...}</c>, plus <c>"options"</c> when present.</summary>
    public static string ToJsonLine(Example e)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            w.WriteStartObject();
            w.WriteString("input", e.Input);
            w.WriteString("target", e.Target);
            if (e.Options is not null)
            {
                w.WriteStartArray("options");
                foreach (var o in e.Options) w.WriteStringValue(o);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteText(string path, string text)
    {
        using var file = new AtomicFile(path);
        var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
        file.Stream.Write(bytes);
        file.Commit();
    }
}
