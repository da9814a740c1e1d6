using System.Text.Json.Nodes;

namespace Amalgam.Strategies.Saved;

/// <summary>Typed reads of strategy.json's <c>parameters</c>, each failure naming the file and the field.</summary>
public sealed class SavedParameters(JsonObject values, string file)
{
    public string File => file;

    JsonNode Required(string field) => values[field] ?? throw new InvalidDataException($"{file}: parameters.{field}: missing");

    public int Int(string field, int min = int.MinValue)
    {
        int v;
        try { v = Required(field).GetValue<int>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException) { throw new InvalidDataException($"{file}: parameters.{field}: expected an integer"); }
        return v >= min ? v : throw new InvalidDataException($"{file}: parameters.{field}: must be at least {min}, got {v}");
    }

    public double Double(string field)
    {
        double v;
        try { v = Required(field).GetValue<double>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException) { throw new InvalidDataException($"{file}: parameters.{field}: expected a number"); }
        return double.IsFinite(v) ? v : throw new InvalidDataException($"{file}: parameters.{field}: must be finite");
    }

    public bool Bool(string field)
    {
        try { return Required(field).GetValue<bool>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException) { throw new InvalidDataException($"{file}: parameters.{field}: expected true or false"); }
    }

    public string String(string field)
    {
        try { return Required(field).GetValue<string>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException) { throw new InvalidDataException($"{file}: parameters.{field}: expected a string"); }
    }

    public T Enum<T>(string field) where T : struct, System.Enum =>
        System.Enum.TryParse<T>(String(field), ignoreCase: true, out var v) && System.Enum.IsDefined(v) ? v
            : throw new InvalidDataException($"{file}: parameters.{field}: expected one of {string.Join(", ", System.Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}");

    /// <summary>An object of expert name → number, read in the pool's expert order (every expert present, no other).</summary>
    public double[] PerExpert(string field, IReadOnlyList<string> experts)
    {
        if (Required(field) is not JsonObject o) throw new InvalidDataException($"{file}: parameters.{field}: expected an object of expert name → number");
        foreach (var (name, _) in o)
            if (!experts.Contains(name)) throw new InvalidDataException($"{file}: parameters.{field}.{name}: not an expert of this strategy");
        return experts.Select(e =>
        {
            var node = o[e] ?? throw new InvalidDataException($"{file}: parameters.{field}.{e}: missing");
            try { return node.GetValue<double>() is var v && double.IsFinite(v) ? v : throw new FormatException(); }
            catch (Exception ex) when (ex is InvalidOperationException or FormatException) { throw new InvalidDataException($"{file}: parameters.{field}.{e}: expected a finite number"); }
        }).ToArray();
    }

    /// <summary>A list of expert names (each an expert of the strategy), as indices into <paramref name="experts"/>.</summary>
    public int[] ExpertList(string field, IReadOnlyList<string> experts, JsonNode? node = null)
    {
        if ((node ?? Required(field)) is not JsonArray a) throw new InvalidDataException($"{file}: parameters.{field}: expected a list of expert names");
        return a.Select((n, i) =>
        {
            string? name = n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
            int k = name is null ? -1 : experts.ToList().IndexOf(name);
            return k >= 0 ? k : throw new InvalidDataException($"{file}: parameters.{field}[{i}]: '{n}' is not an expert of this strategy");
        }).ToArray();
    }

    public JsonNode? Optional(string field) => values[field];

    public static JsonObject PerExpert(IReadOnlyList<string> experts, IReadOnlyList<double> values)
    {
        var o = new JsonObject();
        for (int k = 0; k < experts.Count; k++) o[experts[k]] = values[k];
        return o;
    }

    public static JsonArray Names(IEnumerable<int> experts, IReadOnlyList<string> names) => new(experts.Select(k => (JsonNode)names[k]).ToArray());
}
