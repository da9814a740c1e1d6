using System.Text.Json;

namespace Amalgam.Serving.Api;

/// <summary>
/// Typed reads of a JSON request body's fields, each refusing a wrong type or range with a 400 that names the
/// field. A field that is absent or null reads as null (the default applies).
/// </summary>
public sealed class JsonFields(JsonElement root)
{
    public static async Task<JsonFields> ReadAsync(Stream body, CancellationToken cancel)
    {
        JsonDocument doc;
        try
        {
            doc = await JsonDocument.ParseAsync(body, default, cancel);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest(null, $"malformed JSON body: {e.Message}");
        }
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest(null, "the body must be a JSON object");
        return new JsonFields(doc.RootElement);
    }

    public JsonElement Root => root;

    public JsonElement? Get(string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public string? String(string name) => Get(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        _ => throw ApiException.BadRequest(name, "must be a string"),
    };

    public string RequiredString(string name) => String(name) ?? throw ApiException.BadRequest(name, "is required");

    public bool? Bool(string name) => Get(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        _ => throw ApiException.BadRequest(name, "must be true or false"),
    };

    public double? Number(string name, double min, double max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var x)) throw ApiException.BadRequest(name, "must be a number");
        if (x < min || x > max) throw ApiException.BadRequest(name, $"must be between {min} and {max}, got {x}");
        return x;
    }

    public int? Int(string name, long min, long max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var x)) throw ApiException.BadRequest(name, "must be an integer");
        if (x < min || x > max) throw ApiException.BadRequest(name, $"must be between {min} and {max}, got {x}");
        return (int)x;
    }

    /// <summary>A string or an array of up to <paramref name="most"/> strings (OpenAI's <c>stop</c>).</summary>
    public IReadOnlyList<string> Strings(string name, int most)
    {
        switch (Get(name))
        {
            case null: return [];
            case { ValueKind: JsonValueKind.String } v: return v.GetString() is { Length: > 0 } s ? [s] : throw ApiException.BadRequest(name, "must not be empty");
            case { ValueKind: JsonValueKind.Array } a:
                var list = new List<string>();
                foreach (var e in a.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.String || e.GetString() is not { Length: > 0 } item) throw ApiException.BadRequest(name, "must be a string or an array of non-empty strings");
                    list.Add(item);
                }
                if (list.Count > most) throw ApiException.BadRequest(name, $"at most {most} sequences, got {list.Count}");
                return list;
            default: throw ApiException.BadRequest(name, "must be a string or an array of strings");
        }
    }

    /// <summary>An object of numbers ({"name": weight}), for the <c>adapters</c> extension.</summary>
    public IReadOnlyDictionary<string, double>? Weights(string name)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest(name, "must be an object of adapter names to weights");
        var weights = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var p in v.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetDouble(out var w)) throw ApiException.BadRequest($"{name}.{p.Name}", "must be a number");
            weights[p.Name] = w;
        }
        return weights;
    }

    /// <summary>Refuses a field that is present with other than its only supported value.</summary>
    public void Unsupported(string name, Func<JsonElement, bool> isDefault, string what)
    {
        if (Get(name) is { } v && !isDefault(v)) throw ApiException.BadRequest(name, what);
    }
}
