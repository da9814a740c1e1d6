using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Amalgam.Merging.Recipes;

/// <summary>
/// The one-off form of a recipe, from command-line flags: <c>--method ties --base DIR --model DIR --model DIR
/// --set density=0.5 --set 1:weight=0.7</c>. It is turned into recipe YAML and read by the same parser, so the
/// checks, the errors and the <c>merge_recipe.yaml</c> written beside the result are those of a recipe file.
/// </summary>
public sealed record RecipeFlags
{
    public required string Method { get; init; }
    public string? BaseModel { get; init; }
    public required IReadOnlyList<string> Models { get; init; }
    /// <summary><c>NAME=VALUE</c> sets a top-level parameter; <c>I:NAME=VALUE</c> sets it for model I (0-based, in --model order). A comma list is a gradient.</summary>
    public IReadOnlyList<string> Sets { get; init; } = [];
    public string? Dtype { get; init; }
    public string? OutDtype { get; init; }
    public string? Output { get; init; }
    public int? Rank { get; init; }
    /// <summary><c>peft_double_scale: true</c> (PEFT's svd types' double LoRA scaling).</summary>
    public bool PeftDoubleScale { get; init; }

    public string ToYaml()
    {
        var global = new List<(string Name, string Value)>();
        var perModel = Models.Select(_ => new List<(string Name, string Value)>()).ToList();
        foreach (var set in Sets)
        {
            int eq = set.IndexOf('=');
            if (eq <= 0) throw new InvalidDataException($"--set {set}: expected NAME=VALUE or MODEL_INDEX:NAME=VALUE");
            string name = set[..eq], value = Value(set[(eq + 1)..]);
            int colon = name.IndexOf(':');
            if (colon < 0) { global.Add((name, value)); continue; }
            if (!int.TryParse(name[..colon], NumberStyles.None, CultureInfo.InvariantCulture, out int i) || i >= Models.Count)
                throw new InvalidDataException($"--set {set}: '{name[..colon]}' is not a model index (0 to {Models.Count - 1}, in --model order)");
            perModel[i].Add((name[(colon + 1)..], value));
        }

        var y = new StringBuilder();
        y.Append("merge_method: ").AppendLine(Quote(Method));
        if (BaseModel is not null) y.Append("base_model: ").AppendLine(Quote(Path.GetFullPath(BaseModel)));
        y.AppendLine("models:");
        for (int i = 0; i < Models.Count; i++)
        {
            y.Append("  - model: ").AppendLine(Quote(Path.GetFullPath(Models[i])));
            if (perModel[i].Count == 0) continue;
            y.AppendLine("    parameters:");
            foreach (var (n, v) in perModel[i]) y.Append("      ").Append(n).Append(": ").AppendLine(v);
        }
        if (global.Count > 0)
        {
            y.AppendLine("parameters:");
            foreach (var (n, v) in global) y.Append("  ").Append(n).Append(": ").AppendLine(v);
        }
        if (Dtype is not null) y.Append("dtype: ").AppendLine(Quote(Dtype));
        if (OutDtype is not null) y.Append("out_dtype: ").AppendLine(Quote(OutDtype));
        if (Output is not null) y.Append("output: ").AppendLine(Quote(Output));
        if (Rank is not null) y.Append("rank: ").AppendLine(Rank.Value.ToString(CultureInfo.InvariantCulture));
        if (PeftDoubleScale) y.AppendLine("peft_double_scale: true");
        return y.ToString();
    }

    /// <summary>Numbers and booleans stay plain; a comma list becomes a YAML flow list (a gradient); anything else is quoted.</summary>
    static string Value(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        string One(string p) => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out _) || p is "true" or "false" ? p : Quote(p);
        return parts.Length > 1 ? "[" + string.Join(", ", parts.Select(One)) + "]" : One(text.Trim());
    }

    static string Quote(string s) => JsonSerializer.Serialize(s);
}
