namespace Amalgam.Merging.Recipes;

/// <summary>
/// The one validation of a merge plan, whoever built it (recipe file, flags, library): parameter names, scopes and
/// types against the method's schema (each literal coerced once by <see cref="ParameterSpec.Coerce"/>), required
/// parameters present, base model, output, rank and slices consistent. Refusals name the source and the field.
/// </summary>
internal static class PlanCheck
{
    public static MergeRecipe Check(MergeRecipe plan)
    {
        InvalidDataException Error(string field, string why) => new($"{plan.Source}: {field}: {why}");
        var method = plan.Method;
        var specs = method.Parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
        string Known() => specs.Count == 0 ? "it takes none" : "known: " + string.Join(", ", specs.Keys);

        if (plan.BaseModel is null && plan.BaseStage is null && method.BaseModel == BaseModelUse.Required)
            throw Error("base_model", $"missing; required by {method.Name}");
        if (plan.Models.Count == 0) throw Error(plan.Slices is null ? "models" : "slices", "nothing to merge");

        // A wider range some parameters have under mergekit applies only when the recipe names the flavor itself.
        bool mergekitFlavor = plan.Parameters.TryGetValue("flavor", out var f) && f is ScalarSetting { Value: "mergekit" };
        ParameterSetting Coerced(ParameterSpec spec, ParameterSetting setting, string at) =>
            spec.Kind == ParameterKind.List && setting is ConditionalSetting
                ? throw Error(at, "expected a list of names (a list parameter takes no filters)")
                : setting.Map(v =>
            {
                var value = spec.Coerce(v, out string why) ?? throw Error(at, why);
                return spec.RangeError(value, mergekitFlavor) is { } outside ? throw Error(at, outside) : value;
            });

        var global = new Dictionary<string, ParameterSetting>(StringComparer.Ordinal);
        foreach (var (name, setting) in plan.Parameters)
        {
            if (!specs.TryGetValue(name, out var spec))
                throw Error($"parameters.{name}", name == "geodesic"
                    // mergekit's examples/chipalign.yml: ChipAlign's geodesic interpolation, not a parameter of mergekit's nuslerp.
                    ? $"ChipAlign's geodesic interpolation (geodesic, lambda) is not implemented: it is no parameter of mergekit's {method.Name}, only of an unmerged mergekit pull request whose formula is not available to reproduce; {method.Name} takes ({Known()}); for nuslerp give each model a weight"
                    : $"unknown parameter for {method.Name} ({Known()})");
            global[name] = Coerced(spec, setting, $"parameters.{name}");
        }

        string ModelField(RecipeModel m) => plan.Slices is null ? $"models[{m.Index}]" : SourceField(plan, m);
        RecipeModel CheckModel(RecipeModel m)
        {
            var own = new Dictionary<string, ParameterSetting>(StringComparer.Ordinal);
            foreach (var (name, setting) in m.Parameters)
            {
                string at = $"{ModelField(m)}.parameters.{name}";
                if (!specs.TryGetValue(name, out var spec)) throw Error(at, $"unknown parameter for {method.Name} ({Known()})");
                if (spec.Scope == ParameterScope.Global) throw Error(at, $"'{name}' is a global parameter of {method.Name}; set it under the top-level parameters");
                own[name] = Coerced(spec, setting, at);
            }
            return m with { Parameters = own };
        }
        var models = plan.Models.Select(CheckModel).ToList();
        var slices = plan.Slices?.Select(s => new RecipeSlice(s.Sources.Select(src => src with { Model = CheckModel(src.Model) }).ToList())).ToList();

        foreach (var spec in specs.Values.Where(s => s.Default is null))
        {
            if (spec.Scope == ParameterScope.Global)
            {
                if (!global.ContainsKey(spec.Name)) throw Error($"parameters.{spec.Name}", $"missing; required by {method.Name}");
                continue;
            }
            if (global.ContainsKey(spec.Name)) continue;
            var everyModel = slices is null ? models : slices.SelectMany(s => s.Sources.Select(x => x.Model)).ToList();
            foreach (var m in everyModel)
            {
                bool isBase = IsBase(plan, m) && method.BaseModel != BaseModelUse.Unused;
                if (!isBase && !m.Parameters.ContainsKey(spec.Name))
                    throw Error($"{ModelField(m)}.parameters.{spec.Name}", $"missing; required by {method.Name} (set it here or under the top-level parameters)");
            }
        }

        if (plan.Rank is not null && plan.Output is not (null or MergeOutput.Adapter)) throw Error("rank", "only used with output: adapter");
        if (plan.MaxError is { } e)
        {
            if (!(e > 0 && e < 1)) throw Error("max_error", $"expected a fraction between 0 and 1 (relative Frobenius error), got {e}");
            if (plan.Output is not (null or MergeOutput.Adapter)) throw Error("max_error", "only used with output: adapter");
        }
        if (slices is not null)
        {
            if (plan.Output is not (null or MergeOutput.Model)) throw Error("output", "slices produce a full model; use output: model");
            for (int i = 0; i < slices.Count; i++)
            {
                var s = slices[i];
                if (s.Sources.Count == 0) throw Error($"slices[{i}].sources", "expected at least one source");
                for (int j = 0; j < s.Sources.Count; j++)
                {
                    var src = s.Sources[j];
                    if (src.Start < 0 || src.End <= src.Start) throw Error($"slices[{i}].sources[{j}].layer_range", $"expected [start, end) with 0 ≤ start < end, got [{src.Start}, {src.End}]");
                    if (src.Length != s.Length) throw Error($"slices[{i}].sources[{j}].layer_range", $"{src.Length} layers, but sources[0] has {s.Length}; every source of a slice has as many layers");
                }
            }
        }
        if (plan.Tokenizer is { } t)
        {
            string field = t.Block ? "tokenizer.source" : "tokenizer_source";
            if (t.Source.Length == 0 || t.Source == "model:") throw Error(field, "expected base, union or model:NAME");
            if (plan.Output is not (null or MergeOutput.Model)) throw Error(t.Block ? "tokenizer" : "tokenizer_source", "only for output: model (an adapter carries no embeddings or tokenizer files)");
            if (t.PadToMultipleOf is <= 0) throw Error("tokenizer.pad_to_multiple_of", $"expected a positive integer, got {t.PadToMultipleOf}");
        }
        if (plan.ChatTemplate is { } c)
        {
            if (plan.Output is not (null or MergeOutput.Model)) throw Error("chat_template", "only for output: model (an adapter carries no tokenizer files)");
            if (c != "auto" && !ChatTemplates.Known.ContainsKey(c) && !ChatTemplates.IsTemplate(c))
                throw Error("chat_template", $"expected auto, one of {string.Join(", ", ChatTemplates.Known.Keys)}, or a Jinja template, got '{c}'");
        }
        return plan with { Parameters = global, Models = models, Slices = slices };
    }

    static bool IsBase(MergeRecipe plan, RecipeModel m) =>
        plan.BaseStage is not null ? m.Stage == plan.BaseStage && m.Lora is null : m.Stage is null && m.Lora is null && m.Path == plan.BaseModel;

    /// <summary><c>slices[i].sources[j]</c> of a slice source (its <see cref="RecipeModel.Index"/> is i·1000 + j).</summary>
    internal static string SourceField(MergeRecipe plan, RecipeModel m) => $"slices[{m.Index / 1000}].sources[{m.Index % 1000}]";
}
