using System.Text.Json;

namespace Amalgam.Tokenizers;

/// <summary>Field access for tokenizer files that names the file and field in every error.</summary>
internal static class TokenizerJson
{
    /// <summary>
    /// Parses a JSON file of a model folder (a regular file, or a link inside the folder; at most
    /// <see cref="Inputs.InputFiles.MaxTokenizerBytes"/>), or with <paramref name="userFile"/> a file the user named
    /// (any regular file, at most <see cref="Inputs.InputFiles.MaxConfigBytes"/>).
    /// </summary>
    public static JsonDocument Parse(string path, bool userFile = false)
    {
        try
        {
            byte[] bytes;
            using (var stream = userFile ? Inputs.InputFiles.OpenRegular(path) : Inputs.InputFiles.OpenInFolder(path))
            {
                bytes = new byte[stream.Length];
                stream.ReadExactly(bytes);
            }
            // System.Text.Json checks UTF-8 only when a string is read, deep inside a reader, with a message naming nothing.
            if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw Bad(path, "not valid UTF-8 text");
            int bom = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
            return JsonDocument.Parse(bytes.AsMemory(bom));
        }
        catch (JsonException e)
        {
            throw Bad(path, $"not valid JSON ({e.Message})", e);
        }
    }

    public static JsonElement Get(JsonElement obj, string field, string path, string prefix = "")
    {
        if (!obj.TryGetProperty(field, out var el) || el.ValueKind == JsonValueKind.Null)
            throw Bad(path, $"{prefix}{field} is missing");
        return el;
    }

    public static string? StringOrNull(JsonElement obj, string field, string path, string prefix = "")
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(field, out var el) || el.ValueKind == JsonValueKind.Null) return null;
        if (el.ValueKind != JsonValueKind.String) throw Bad(path, $"{prefix}{field} must be a string");
        return el.GetString();
    }

    public static bool Bool(JsonElement obj, string field, string path, string prefix = "")
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(field, out var el) || el.ValueKind == JsonValueKind.Null) return false;
        return el.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad(path, $"{prefix}{field} must be true or false"),
        };
    }

    public static int Int(JsonElement obj, string field, string path, string prefix, int fallback)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(field, out var el) || el.ValueKind == JsonValueKind.Null) return fallback;
        if (el.ValueKind != JsonValueKind.Number || !el.TryGetInt32(out var v) || v < 0)
            throw Bad(path, $"{prefix}{field} must be a non-negative integer");
        return v;
    }

    /// <summary>The text of a <c>{"String": s}</c> or <c>{"Regex": r}</c> pattern as a .NET regex.</summary>
    public static string Pattern(JsonElement obj, string at, string path)
    {
        var pattern = Get(obj, "pattern", path, at + ".");
        if (pattern.ValueKind == JsonValueKind.Object && pattern.TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String)
            return r.GetString()!;
        if (pattern.ValueKind == JsonValueKind.Object && pattern.TryGetProperty("String", out var s) && s.ValueKind == JsonValueKind.String)
            return System.Text.RegularExpressions.Regex.Escape(s.GetString()!);
        throw Bad(path, $"{at}.pattern must be {{\"Regex\": ...}} or {{\"String\": ...}}");
    }

    /// <summary>The literal of a <c>{"String": s}</c> pattern, or null when it is a regex.</summary>
    public static string? LiteralPattern(JsonElement obj) =>
        obj.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object && p.TryGetProperty("String", out var s)
            && s.ValueKind == JsonValueKind.String ? s.GetString() : null;

    public static InvalidDataException Bad(string path, string message, Exception? inner = null) => new($"{path}: {message}", inner);
}
