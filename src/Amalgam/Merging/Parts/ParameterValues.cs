namespace Amalgam.Merging.Parts;

/// <summary>
/// Reading resolved parameter values with validation: a per-model value falls back to the global one, then to the
/// default; a choice outside its allowed values is refused with a one-line error naming the parameter.
/// </summary>
internal static class ParameterValues
{
    public static double PerModel(MergeTensorInputs inputs, int model, string name, double fallback)
    {
        var own = model < inputs.ModelParameters.Count ? inputs.ModelParameters[model] : MergeParameters.Empty;
        return own.Has(name) ? own.Number(name, fallback) : inputs.Global.Number(name, fallback);
    }

    public static string? Choice(MergeParameters p, string name, IReadOnlyList<string> choices)
    {
        if (!p.Values.TryGetValue(name, out var v)) return null;
        string s = v switch
        {
            string str => str,
            bool b => b ? "true" : "false",
            _ => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "",
        };
        if (!choices.Contains(s, StringComparer.Ordinal))
            throw new InvalidDataException($"parameter '{name}': unknown value '{s}'; expected one of {string.Join(", ", choices)}");
        return s;
    }

    public static double? Number(MergeParameters p, string name) => p.Has(name) ? p.Number(name, 0) : null;

    public static bool? Bool(MergeParameters p, string name)
    {
        if (!p.Values.TryGetValue(name, out var v)) return null;
        return v switch
        {
            bool b => b,
            string s when s is "true" or "false" => s == "true",
            _ => throw new InvalidDataException($"parameter '{name}': expected true or false, got '{v}'"),
        };
    }

    /// <summary>
    /// Checks every value against a method's schema: unknown names, wrong kinds and choices outside their lists
    /// are refused (one line, naming the parameter). The executor may call this once per recipe.
    /// </summary>
    public static void Validate(IMergeMethod method, MergeParameters global, IEnumerable<MergeParameters> perModel)
    {
        var specs = method.Parameters.ToDictionary(s => s.Name, StringComparer.Ordinal);
        void Check(MergeParameters p, bool isGlobal)
        {
            foreach (var (name, value) in p.Values)
            {
                if (!specs.TryGetValue(name, out var spec))
                    throw new InvalidDataException($"parameter '{name}': not a parameter of {method.Name}; known: {string.Join(", ", specs.Keys)}");
                if (!isGlobal && spec.Scope == ParameterScope.Global)
                    throw new InvalidDataException($"parameter '{name}': global to {method.Name}, cannot be given per model");
                var literals = spec.Kind == ParameterKind.List && value is IEnumerable<string> items ? items.Cast<object>() : [value];
                foreach (var literal in literals)
                    if (spec.Coerce(literal, out string why) is null) throw new InvalidDataException($"parameter '{name}': {why}");
            }
        }
        Check(global, true);
        foreach (var p in perModel) Check(p, false);
    }
}
