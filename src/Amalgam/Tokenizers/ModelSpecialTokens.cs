using System.Text.Json;

namespace Amalgam.Tokenizers;

/// <summary>
/// BOS/EOS/PAD ids of a Hugging Face model folder. tokenizer.json itself does not say which added token is BOS,
/// so we ask tokenizer_config.json (token strings) first, then config.json (ids), then the post-processor template.
/// </summary>
internal static class ModelSpecialTokens
{
    public static (int? Bos, int? Eos, int? Pad) Resolve(string modelDir, Func<string, int?> lookup, int? templateBos)
    {
        var tokenizerConfig = TryParse(Path.Combine(modelDir, "tokenizer_config.json"));
        var config = TryParse(Path.Combine(modelDir, "config.json"));
        try
        {
            return (Pick("bos"), Pick("eos"), Pick("pad"));
        }
        finally
        {
            tokenizerConfig?.Dispose();
            config?.Dispose();
        }

        int? Pick(string kind)
        {
            var file = Path.Combine(modelDir, "tokenizer_config.json");
            // An explicit null in tokenizer_config.json means "none" (Qwen2's bos_token) and beats config.json.
            if (tokenizerConfig is not null && tokenizerConfig.RootElement.TryGetProperty($"{kind}_token", out var t))
            {
                var content = t.ValueKind switch
                {
                    JsonValueKind.Null => null,
                    JsonValueKind.String => t.GetString(),
                    JsonValueKind.Object when t.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
                    _ => throw new InvalidDataException($"{file}: {kind}_token must be a string, an object with content, or null"),
                };
                if (content is null) return null;
                return lookup(content) ?? throw new InvalidDataException(
                    $"{file}: {kind}_token \"{content}\" is not a token of {HuggingFaceBpeTokenizer.FileName}");
            }
            if (config is not null && config.RootElement.TryGetProperty($"{kind}_token_id", out var idEl))
            {
                // Some configs list several EOS ids (Llama 3.1); the first is the canonical one.
                if (idEl.ValueKind == JsonValueKind.Array) idEl = idEl.GetArrayLength() > 0 ? idEl[0] : default;
                if (idEl.ValueKind == JsonValueKind.Number && idEl.TryGetInt32(out var id)) return id;
                if (idEl.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined) return null;
                throw new InvalidDataException($"{Path.Combine(modelDir, "config.json")}: {kind}_token_id must be an integer, a list of integers, or null");
            }
            return kind == "bos" ? templateBos : null;
        }
    }

    private static JsonDocument? TryParse(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            var doc = JsonDocument.Parse(Inputs.InputFiles.ReadTextInFolder(path));
            if (doc.RootElement.ValueKind == JsonValueKind.Object) return doc;
            doc.Dispose();
            throw new InvalidDataException($"{path}: the top level must be a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e);
        }
    }
}
