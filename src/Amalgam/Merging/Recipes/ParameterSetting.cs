using System.Globalization;

namespace Amalgam.Merging.Recipes;

/// <summary>
/// A parameter value as written in a recipe, before it is resolved for one tensor (mergekit's <c>ParameterSetting</c>):
/// a scalar, a gradient over depth, or a list of <c>{filter, value}</c> conditionals.
/// </summary>
public abstract record ParameterSetting
{
    /// <summary>
    /// The value for tensor <paramref name="tensorName"/> at depth <paramref name="t"/> (0 for the first layer, 1 for
    /// the last), or null when no conditional applies, so that the next level (global, then the default) is asked.
    /// </summary>
    public abstract object? Evaluate(string tensorName, double t);

    /// <summary>Every literal the setting can produce, for type checks at load time.</summary>
    public abstract IEnumerable<object> Literals { get; }

    /// <summary>The setting as YAML flow text (what <see cref="MergeRecipe.ToYaml"/> writes; also README files).</summary>
    public abstract string ToYaml();

    /// <summary>The same setting with every literal replaced (the plan's coercion to the parameter's type).</summary>
    public abstract ParameterSetting Map(Func<object, object> literal);

    /// <summary>Numbers and booleans plain; strings as YAML scalars, quoted when they would read as something else.</summary>
    internal static string Literal(object v) => v switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        string s => YamlText.Scalar(s),
        _ => Convert.ToString(v, CultureInfo.InvariantCulture)!,
    };
}

/// <summary>A single value: a number (double), a boolean or a string.</summary>
public sealed record ScalarSetting(object Value) : ParameterSetting
{
    public override object? Evaluate(string tensorName, double t) => Value;
    public override IEnumerable<object> Literals => [Value];
    public override string ToYaml() => Literal(Value);
    public override ParameterSetting Map(Func<object, object> literal) => new ScalarSetting(literal(Value));
}

/// <summary>
/// A gradient over depth. Numbers are interpolated piecewise linearly exactly as mergekit does: with
/// <c>s = t·(n−1)</c>, <c>i0 = ⌊s⌋</c>, <c>i1 = min(n−1, i0+1)</c>, value <c>(1−f)·v[i0] + f·v[i1]</c>, <c>f = s − i0</c>.
/// Lists of booleans or strings step instead: <c>v[⌊t·(n−1)⌋]</c>.
/// </summary>
public sealed record GradientSetting(IReadOnlyList<object> Values) : ParameterSetting
{
    public override object? Evaluate(string tensorName, double t)
    {
        double scaled = t * (Values.Count - 1);
        int i0 = (int)scaled;
        if (Values.All(v => v is double))
        {
            int i1 = Math.Min(Values.Count - 1, i0 + 1);
            double frac = scaled - i0;
            return (1 - frac) * (double)Values[i0] + frac * (double)Values[i1];
        }
        return Values[i0];
    }

    public override IEnumerable<object> Literals => Values;
    public override string ToYaml() => "[" + string.Join(", ", Values.Select(Literal)) + "]";
    public override ParameterSetting Map(Func<object, object> literal) => new GradientSetting(Values.Select(literal).ToList());
}

/// <summary>One <c>{filter, value}</c> entry; a null filter (or <c>*</c>) matches every tensor.</summary>
public sealed record Condition(string? Filter, ParameterSetting Value)
{
    public bool Matches(string tensorName) => Filter is null or "*" || tensorName.Contains(Filter, StringComparison.Ordinal);
}

/// <summary>
/// Conditionals: the first entry whose filter is a substring of the tensor name wins. When none matches the
/// setting yields nothing and resolution falls through to the next level, as in mergekit.
/// </summary>
public sealed record ConditionalSetting(IReadOnlyList<Condition> Conditions) : ParameterSetting
{
    public override object? Evaluate(string tensorName, double t) =>
        Conditions.FirstOrDefault(c => c.Matches(tensorName))?.Value.Evaluate(tensorName, t);

    public override IEnumerable<object> Literals => Conditions.SelectMany(c => c.Value.Literals);

    public override string ToYaml() =>
        "[" + string.Join(", ", Conditions.Select(c => c.Filter is null ? $"{{value: {c.Value.ToYaml()}}}" : $"{{filter: {YamlText.Quote(c.Filter)}, value: {c.Value.ToYaml()}}}")) + "]";

    public override ParameterSetting Map(Func<object, object> literal) =>
        new ConditionalSetting(Conditions.Select(c => c with { Value = c.Value.Map(literal) }).ToList());
}
