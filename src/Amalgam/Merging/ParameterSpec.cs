using System.Globalization;

namespace Amalgam.Merging;

public enum ParameterScope { Global, PerModel }

public enum ParameterKind { Number, Bool, Choice }

/// <summary>
/// One parameter of a merge method. <paramref name="Default"/> null means required. Per-model parameters may also
/// be given globally (mergekit: per-model values override global ones). <paramref name="Choices"/> lists the
/// allowed values of a <see cref="ParameterKind.Choice"/>; <paramref name="Aliases"/> maps other spellings of a
/// choice (mergekit's <c>rescale: true</c>) onto one of them.
/// </summary>
public sealed record ParameterSpec(
    string Name,
    ParameterScope Scope,
    ParameterKind Kind,
    object? Default,
    string Description,
    IReadOnlyList<string>? Choices = null,
    IReadOnlyDictionary<string, string>? Aliases = null)
{
    /// <summary>
    /// The one reader of parameter values: a literal as written (a number as double, a boolean, a string) turned
    /// into this parameter's type (double, bool, or one of <see cref="Choices"/>), or null with the reason in
    /// <paramref name="why"/>. Every plan (recipe file, flags, library call) goes through it once; methods then read
    /// values of the right type. Range checks belong here too.
    /// </summary>
    public object? Coerce(object literal, out string why)
    {
        why = "";
        switch (Kind)
        {
            case ParameterKind.Number when literal is double or float or int or long or decimal:
                double d = Convert.ToDouble(literal, CultureInfo.InvariantCulture);
                if (double.IsFinite(d)) return d;
                why = $"expected a finite number, got '{d}'";
                return null;
            case ParameterKind.Bool when literal is bool b:
                return b;
            case ParameterKind.Choice:
                string text = literal switch
                {
                    bool flag => flag ? "true" : "false",
                    string s => s,
                    _ => Convert.ToString(literal, CultureInfo.InvariantCulture) ?? "",
                };
                if (Aliases is not null && Aliases.TryGetValue(text, out var alias)) return alias;
                if (literal is string && (Choices is null || Choices.Contains(text, StringComparer.Ordinal))) return text;
                break;
        }
        string expected = Kind switch
        {
            ParameterKind.Number => "a number",
            ParameterKind.Bool => "true or false",
            _ => "one of " + string.Join(", ", (Choices ?? []).Concat(Aliases?.Keys ?? [])),
        };
        why = $"expected {expected}, got '{Literal(literal)}'";
        return null;
    }

    internal static string Literal(object v) => v switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };
}
