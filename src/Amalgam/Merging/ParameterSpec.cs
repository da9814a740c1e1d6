using System.Globalization;

namespace Amalgam.Merging;

public enum ParameterScope { Global, PerModel }

/// <summary><see cref="List"/>: a list of names as one value (cabs's <c>pruning_order</c>), never a gradient over depth.</summary>
public enum ParameterKind { Number, Bool, Choice, List }

/// <summary>The values a number parameter accepts: an interval, open or closed at each end, optionally integers only.</summary>
public sealed record NumberRange(double Min, double Max, bool MinOpen = false, bool MaxOpen = false, bool Integer = false)
{
    /// <summary>Any finite number (weights, λ, scale: a negative one negates a task vector).</summary>
    public static readonly NumberRange Any = new(double.NegativeInfinity, double.PositiveInfinity, true, true);
    /// <summary>[0, 1]: a fraction.</summary>
    public static readonly NumberRange Fraction = new(0, 1);
    /// <summary>[0, ∞).</summary>
    public static readonly NumberRange NonNegative = new(0, double.PositiveInfinity, MaxOpen: true);
    /// <summary>(0, ∞).</summary>
    public static readonly NumberRange Positive = new(0, double.PositiveInfinity, MinOpen: true, MaxOpen: true);

    public bool Contains(double v) =>
        (MinOpen ? v > Min : v >= Min) && (MaxOpen ? v < Max : v <= Max) && (!Integer || v == Math.Floor(v));

    public override string ToString()
    {
        static string F(double d) => double.IsPositiveInfinity(d) ? "∞" : double.IsNegativeInfinity(d) ? "−∞" : d.ToString("R", CultureInfo.InvariantCulture);
        string interval = $"{(MinOpen ? "(" : "[")}{F(Min)}, {F(Max)}{(MaxOpen ? ")" : "]")}";
        return Integer ? $"an integer in {interval}" : interval;
    }
}

/// <summary>
/// One parameter of a merge method. <paramref name="Default"/> null means required. Per-model parameters may also
/// be given globally (mergekit: per-model values override global ones). <paramref name="Choices"/> lists the
/// allowed values of a <see cref="ParameterKind.Choice"/>; <paramref name="Aliases"/> maps other spellings of a
/// choice (mergekit's <c>rescale: true</c>) onto one of them. A number accepts <paramref name="Range"/> (default:
/// any finite number); <paramref name="MergekitRange"/>, when set, is the wider range mergekit accepts, allowed only
/// with an explicit <c>flavor: mergekit</c> (e.g. a density above 1, which mergekit reads as no sparsification).
/// </summary>
public sealed record ParameterSpec(
    string Name,
    ParameterScope Scope,
    ParameterKind Kind,
    object? Default,
    string Description,
    IReadOnlyList<string>? Choices = null,
    IReadOnlyDictionary<string, string>? Aliases = null,
    NumberRange? Range = null,
    NumberRange? MergekitRange = null)
{
    /// <summary>
    /// Null when the coerced number <paramref name="value"/> is in range (the mergekit range with an explicit
    /// <c>flavor: mergekit</c>), else why not.
    /// </summary>
    public string? RangeError(object value, bool mergekitFlavor)
    {
        if (Kind != ParameterKind.Number || value is not double d) return null;
        var range = mergekitFlavor && MergekitRange is not null ? MergekitRange : Range ?? NumberRange.Any;
        if (range.Contains(d)) return null;
        string wider = !mergekitFlavor && MergekitRange is { } m && m.Contains(d) ? $"; mergekit accepts {m}: give flavor: mergekit to allow it" : "";
        return $"{Literal(d)} is {(range.Integer ? "not " : "outside ")}{range} ({Description}){wider}";
    }

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
            case ParameterKind.List when literal is string item:
                return item;
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
            ParameterKind.List => "a list of names",
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
