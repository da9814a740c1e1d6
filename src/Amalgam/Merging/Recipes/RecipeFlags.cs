using System.Globalization;

namespace Amalgam.Merging.Recipes;

/// <summary>
/// The one-off form of a recipe, from command-line flags: <c>--method ties --base DIR --model DIR --model DIR
/// --set density=0.5 --set 1:weight=0.7</c>. It builds the same typed plan a recipe file parses into, checked by
/// the same <see cref="MergeRecipe.Checked"/>, so the errors and the <c>merge_recipe.yaml</c> written beside the
/// result are those of a recipe file.
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
    /// <summary>A positive integer, or <c>auto</c> (with <see cref="MaxError"/>, default 0.01).</summary>
    public string? Rank { get; init; }
    public double? MaxError { get; init; }
    /// <summary><c>peft_double_scale: true</c> (PEFT's svd types' double LoRA scaling).</summary>
    public bool PeftDoubleScale { get; init; }

    const string Source = "command line";

    public MergeRecipe ToRecipe(Func<string, IMergeMethod>? methods = null)
    {
        InvalidDataException Error(string field, string why) => new($"{Source}: {field}: {why}");
        IMergeMethod method;
        try { method = (methods ?? MergeMethods.Get)(Method); }
        catch (Exception e) when (e is InvalidDataException or KeyNotFoundException or ArgumentException)
        {
            string msg = e.Message.StartsWith("merge_method:", StringComparison.Ordinal) ? e.Message["merge_method:".Length..].Trim() : e.Message;
            throw Error("merge_method", msg);
        }

        var global = new Dictionary<string, ParameterSetting>(StringComparer.Ordinal);
        var perModel = Models.Select(_ => new Dictionary<string, ParameterSetting>(StringComparer.Ordinal)).ToList();
        foreach (var set in Sets)
        {
            int eq = set.IndexOf('=');
            if (eq <= 0) throw new InvalidDataException($"--set {set}: expected NAME=VALUE or MODEL_INDEX:NAME=VALUE");
            string name = set[..eq];
            var value = Value(set[(eq + 1)..]);
            int colon = name.IndexOf(':');
            if (colon < 0) { global[name] = value; continue; }
            if (!int.TryParse(name[..colon], NumberStyles.None, CultureInfo.InvariantCulture, out int i) || i >= Models.Count)
                throw new InvalidDataException($"--set {set}: '{name[..colon]}' is not a model index (0 to {Models.Count - 1}, in --model order)");
            perModel[i][name[(colon + 1)..]] = value;
        }

        TorchSharp.torch.ScalarType? ParseDtype(string? name, string field) =>
            name is null ? null : RecipeDtype.TryParse(name, out var t) ? t : throw Error(field, $"unknown dtype '{name}' (known: {RecipeDtype.Known})");

        MergeOutput? output = Output is null ? null : RecipeValues.Output(Output, Error);
        int? rank = null;
        double? maxError = null;
        if (Rank is not null)
        {
            (rank, bool auto) = RecipeValues.Rank(Rank, Error);
            if (auto) maxError = MaxError ?? 0.01;
        }
        if (MaxError is not null && Rank != "auto") throw Error("max_error", "only with rank: auto");
        if (PeftDoubleScale && output is not (null or MergeOutput.Adapter)) throw Error("peft_double_scale", "only used with output: adapter (PEFT's svd types)");
        var outDtype = ParseDtype(OutDtype, "out_dtype");
        if (outDtype == TorchSharp.torch.ScalarType.Float64) throw Error("out_dtype", "float64 cannot be written to safetensors here; use float32");

        return new MergeRecipe
        {
            Method = method,
            BaseModel = BaseModel is null ? null : Path.GetFullPath(BaseModel),
            Models = Models.Select((m, i) => new RecipeModel(Path.GetFullPath(m), perModel[i], i)).ToList(),
            Parameters = global,
            Dtype = ParseDtype(Dtype, "dtype"),
            OutDtype = outDtype,
            Output = output,
            Rank = rank,
            MaxError = maxError,
            PeftDoubleScale = PeftDoubleScale,
            Source = Source,
        }.Checked();
    }

    /// <summary>Numbers and booleans as such; a comma list is a gradient; anything else a string.</summary>
    static ParameterSetting Value(string text)
    {
        static object One(string p) =>
            double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : p is "true" or "false" ? p == "true" : p;
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        return parts.Length > 1 ? new GradientSetting(parts.Select(One).ToList()) : new ScalarSetting(One(text.Trim()));
    }
}
