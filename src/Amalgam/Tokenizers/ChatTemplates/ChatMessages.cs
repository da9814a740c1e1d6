using System.Text.Json;

namespace Amalgam.Tokenizers.ChatTemplates;

/// <summary>A conversation file: a JSON list of messages, each an object with a string <c>role</c> and a <c>content</c>.</summary>
public static class ChatMessages
{
    /// <summary>
    /// Reads and checks <paramref name="path"/>; content may be a string, a list of parts or null (tool-call turns),
    /// other fields (tool_calls, reasoning_content, ...) pass through to the template. Errors name the file and the entry.
    /// </summary>
    public static JsonElement Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file does not exist", path);
        using var doc = TokenizerJson.Parse(path, userFile: true);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{path}: must be a JSON list of {{\"role\", \"content\"}} messages");
        if (root.GetArrayLength() == 0) throw new InvalidDataException($"{path}: the list of messages is empty");
        int i = 0;
        foreach (var m in root.EnumerateArray())
        {
            var at = $"{path}: [{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{at} must be an object");
            if (!m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{at}.role is missing or not a string");
            if (!m.TryGetProperty("content", out var content) || content.ValueKind is not (JsonValueKind.String or JsonValueKind.Array or JsonValueKind.Null))
                throw new InvalidDataException($"{at}.content is missing or not a string, a list of parts or null");
        }
        return root.Clone();
    }
}
