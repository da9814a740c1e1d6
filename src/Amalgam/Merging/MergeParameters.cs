namespace Amalgam.Merging;

/// <summary>
/// Parameter values already resolved for one tensor (gradients over depth interpolated, filters applied,
/// per-model values overriding global ones): numbers as double, booleans as bool, choices as string.
/// </summary>
public sealed class MergeParameters
{
    private readonly IReadOnlyDictionary<string, object> values;

    public MergeParameters(IReadOnlyDictionary<string, object> values) => this.values = values;

    public static MergeParameters Empty { get; } = new(new Dictionary<string, object>());

    public IReadOnlyDictionary<string, object> Values => values;

    public bool Has(string name) => values.ContainsKey(name);

    public double Number(string name, double fallback) => values.TryGetValue(name, out var v) ? Convert.ToDouble(v) : fallback;

    public bool Bool(string name, bool fallback) => values.TryGetValue(name, out var v) ? (bool)v : fallback;

    public string Choice(string name, string fallback) => values.TryGetValue(name, out var v) ? (string)v : fallback;

    /// <summary>A <see cref="ParameterKind.List"/> value, or null when unset.</summary>
    public IReadOnlyList<string>? List(string name) => values.TryGetValue(name, out var v) ? (IReadOnlyList<string>)v : null;

    public double RequiredNumber(string name, string tensor) =>
        values.TryGetValue(name, out var v) ? Convert.ToDouble(v) : throw new InvalidDataException($"tensor '{tensor}': parameter '{name}' is required");
}
