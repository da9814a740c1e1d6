using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using static TorchSharp.torch;

namespace Amalgam.Merging.Recipes;

/// <summary>
/// Reads mergekit-schema YAML into a <see cref="MergeRecipe"/>. Every refusal is one line naming the source and the
/// field (<c>recipe.yaml: models[1].parameters.densty: unknown parameter for ties</c>).
/// </summary>
internal static class RecipeParser
{
    static readonly string[] Fields = ["merge_method", "base_model", "models", "parameters", "dtype", "out_dtype", "random_seed", "out_shard_size", "output", "rank", "peft_double_scale", "tokenizer_source"];

    static readonly Dictionary<string, string> Unsupported = new(StringComparer.Ordinal)
    {
        ["slices"] = "layer slices (frankenmerges) are not supported; list whole models under 'models'",
        ["modules"] = "per-module definitions are not supported; list whole models under 'models'",
        ["tokenizer"] = "tokenizer merging is not supported; the base model's tokenizer is copied",
        ["chat_template"] = "chat templates are not set by merges; the base model's tokenizer files are copied",
    };

    /// <summary>A refusal inside a nested value; the caller prefixes the source.</summary>
    sealed class FieldError(string message) : Exception(message);

    public static MergeRecipe Parse(string yaml, string source, Func<string, IMergeMethod> methods)
    {
        try
        {
            return ParseChecked(yaml, source, methods);
        }
        catch (FieldError e)
        {
            throw new InvalidDataException($"{source}: {e.Message}");
        }
    }

    static MergeRecipe ParseChecked(string yaml, string source, Func<string, IMergeMethod> methods)
    {
        InvalidDataException Error(string field, string why) => new($"{source}: {field}: {why}");

        // Size, depth and aliases are bounded before the tree is built (Inputs.YamlInput).
        var stream = Inputs.YamlInput.Load(yaml, source);
        var root = stream.Documents.Count == 1 && stream.Documents[0].RootNode is YamlMappingNode top
            ? top
            : throw new InvalidDataException($"{source}: expected one YAML mapping (merge_method, models, ...)");

        var fields = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (k, v) in root.Children)
        {
            string key = Key(k, "");
            if (Unsupported.TryGetValue(key, out var why)) throw Error(key, why);
            if (!Fields.Contains(key)) throw Error(key, $"unknown field (known: {string.Join(", ", Fields)})");
            fields[key] = v;
        }

        string methodName = fields.TryGetValue("merge_method", out var mn) ? Text(mn, "merge_method") : throw Error("merge_method", "missing");
        IMergeMethod method;
        try { method = methods(methodName); }
        catch (Exception e) when (e is InvalidDataException or KeyNotFoundException or ArgumentException)
        {
            string msg = e.Message.StartsWith("merge_method:", StringComparison.Ordinal) ? e.Message["merge_method:".Length..].Trim() : e.Message;
            throw Error("merge_method", msg);
        }

        string? baseModel = fields.TryGetValue("base_model", out var bm) ? FullPath(Text(bm, "base_model")) : null;
        if (baseModel is null && method.BaseModel == BaseModelUse.Required) throw Error("base_model", $"missing; required by {method.Name}");

        if (!fields.TryGetValue("models", out var modelsNode)) throw Error("models", "missing");
        if (modelsNode is not YamlSequenceNode { Children.Count: > 0 } modelSeq) throw Error("models", "expected a non-empty list of {model: PATH, parameters: {...}}");
        var models = new List<RecipeModel>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < modelSeq.Children.Count; i++)
        {
            string at = $"models[{i}]";
            string path;
            IReadOnlyDictionary<string, ParameterSetting> ps = new Dictionary<string, ParameterSetting>();
            switch (modelSeq.Children[i])
            {
                case YamlScalarNode s:
                    path = FullPath(Text(s, at));
                    break;
                case YamlMappingNode m:
                    path = "";
                    foreach (var (k, v) in m.Children)
                    {
                        string key = Key(k, at);
                        if (key == "model") path = FullPath(Text(v, $"{at}.model"));
                        else if (key == "parameters") ps = Settings(v, $"{at}.parameters");
                        else throw Error($"{at}.{key}", "unknown field (expected model, parameters)");
                    }
                    if (path == "") throw Error($"{at}.model", "missing");
                    break;
                default:
                    throw Error(at, "expected {model: PATH, parameters: {...}}");
            }
            if (seen.TryGetValue(path, out int first)) throw Error($"{at}.model", $"'{path}' is listed twice (also models[{first}])");
            seen[path] = i;
            models.Add(new RecipeModel(path, ps, i));
        }

        var global = fields.TryGetValue("parameters", out var pn) ? Settings(pn, "parameters") : new Dictionary<string, ParameterSetting>();
        Validate(method, baseModel, models, global, Error);

        ScalarType? dtype = fields.TryGetValue("dtype", out var dn) ? Dtype(Text(dn, "dtype"), "dtype", Error) : null;
        ScalarType? outDtype = fields.TryGetValue("out_dtype", out var on) ? Dtype(Text(on, "out_dtype"), "out_dtype", Error) : null;
        if (outDtype == ScalarType.Float64) throw Error("out_dtype", "float64 cannot be written to safetensors here; use float32");

        long seed = 0;
        if (fields.TryGetValue("random_seed", out var sn) && !long.TryParse(Text(sn, "random_seed"), NumberStyles.Integer, CultureInfo.InvariantCulture, out seed))
            throw Error("random_seed", $"expected an integer, got '{Text(sn, "random_seed")}'");

        long shard = 5_000_000_000;
        if (fields.TryGetValue("out_shard_size", out var zn) && !ByteSize.TryParse(Text(zn, "out_shard_size"), out shard))
            throw Error("out_shard_size", $"expected a size such as 5B, 500M or 1000000, got '{Text(zn, "out_shard_size")}'");

        MergeOutput? output = null;
        if (fields.TryGetValue("output", out var outNode))
        {
            output = Text(outNode, "output") switch
            {
                "model" => MergeOutput.Model,
                "adapter" => MergeOutput.Adapter,
                "cat" => MergeOutput.Cat,
                "factor_linear" => MergeOutput.FactorLinear,
                var other => throw Error("output", $"unknown output '{other}' (known: model, adapter, cat, factor_linear)"),
            };
        }

        int? rank = null;
        if (fields.TryGetValue("rank", out var rn))
        {
            if (!int.TryParse(Text(rn, "rank"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int r) || r <= 0)
                throw Error("rank", $"expected a positive integer, got '{Text(rn, "rank")}'");
            if (output is not (null or MergeOutput.Adapter)) throw Error("rank", "only used with output: adapter");
            rank = r;
        }

        bool doubleScale = false;
        if (fields.TryGetValue("peft_double_scale", out var ds))
        {
            doubleScale = Text(ds, "peft_double_scale") switch
            {
                "true" => true,
                "false" => false,
                var other => throw Error("peft_double_scale", $"expected true or false, got '{other}'"),
            };
            if (output is not (null or MergeOutput.Adapter)) throw Error("peft_double_scale", "only used with output: adapter (PEFT's svd types)");
        }

        if (fields.TryGetValue("tokenizer_source", out var tn) && Text(tn, "tokenizer_source") != "base")
            throw Error("tokenizer_source", "only 'base' is supported (the base model's tokenizer files are copied)");

        return new MergeRecipe
        {
            Method = method,
            BaseModel = baseModel,
            Models = models,
            Parameters = global,
            Dtype = dtype,
            ComputeDtype = dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32,
            OutDtype = outDtype,
            RandomSeed = seed,
            OutShardSize = shard,
            Output = output,
            Rank = rank,
            PeftDoubleScale = doubleScale,
            Source = source,
            Yaml = yaml,
        };

        string Text(YamlNode node, string field) =>
            node is YamlScalarNode { Value: { } v } && !IsNull(node) ? v : throw Error(field, "expected a single value");
    }

    static string CliLine(string message) => message.Split('\n')[0].Trim();

    /// <summary>Mapping keys must be plain names (a list or mapping as a key is refused by line).</summary>
    static string Key(YamlNode k, string at) => k is YamlScalarNode s
        ? s.Value ?? ""
        : throw new FieldError($"{(at.Length == 0 ? "" : at + ": ")}line {k.Start.Line}: a key is {(k is YamlSequenceNode ? "a list" : "a mapping")}; keys must be plain names");

    /// <summary>Plain numbers must be finite: NaN or Infinity would silently poison every tensor they touch.</summary>
    static double Finite(double d, string v, string at) =>
        double.IsFinite(d) ? d : throw new FieldError($"{at}: {v} is not a finite number");

    static string FullPath(string path) => Path.GetFullPath(path);

    static bool IsNull(YamlNode node) => node is YamlScalarNode s && s.Style == YamlDotNet.Core.ScalarStyle.Plain && s.Value is "" or "~" or "null" or "Null" or "NULL";

    static ScalarType Dtype(string name, string field, Func<string, string, InvalidDataException> error) =>
        RecipeDtype.TryParse(name, out var t) ? t : throw error(field, $"unknown dtype '{name}' (known: {RecipeDtype.Known})");

    /// <summary>A <c>parameters:</c> mapping: name → setting.</summary>
    static Dictionary<string, ParameterSetting> Settings(YamlNode node, string at)
    {
        if (IsNull(node)) return [];
        if (node is not YamlMappingNode map) throw new FieldError($"{at}: expected a mapping of parameter names to values");
        var result = new Dictionary<string, ParameterSetting>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
        {
            string name = Key(k, at);
            result[name] = Setting(v, $"{at}.{name}");
        }
        return result;
    }

    /// <summary>Scalar, gradient (list of scalars), or conditionals (list of {filter, value}, or one such mapping).</summary>
    internal static ParameterSetting Setting(YamlNode node, string at)
    {
        switch (node)
        {
            case YamlScalarNode s:
                return new ScalarSetting(Scalar(s, at));
            case YamlSequenceNode seq when seq.Children.Count > 0 && seq.Children.All(c => c is YamlScalarNode):
                var values = seq.Children.Select((c, i) => Scalar((YamlScalarNode)c, $"{at}[{i}]")).ToList();
                if (values.Any(v => v is double) && !values.All(v => v is double))
                    throw new FieldError($"{at}: a gradient mixes numbers and other values");
                return new GradientSetting(values);
            case YamlSequenceNode seq when seq.Children.Count > 0 && seq.Children.All(c => c is YamlMappingNode):
                return new ConditionalSetting(seq.Children.Select((c, i) => Conditional((YamlMappingNode)c, $"{at}[{i}]")).ToList());
            case YamlMappingNode m:
                return new ConditionalSetting([Conditional(m, at)]);
            default:
                throw new FieldError($"{at}: expected a value, a list of values (a gradient) or a list of {{filter, value}}");
        }
    }

    static Condition Conditional(YamlMappingNode m, string at)
    {
        string? filter = null;
        ParameterSetting? value = null;
        foreach (var (k, v) in m.Children)
        {
            string key = Key(k, at);
            if (key == "filter") filter = v is YamlScalarNode { Value: { } f } ? f : throw new FieldError($"{at}.filter: expected a string");
            else if (key == "value")
            {
                value = Setting(v, $"{at}.value");
                if (value is ConditionalSetting) throw new FieldError($"{at}.value: conditionals cannot nest");
            }
            else throw new FieldError($"{at}.{key}: unknown field (expected filter, value)");
        }
        return new Condition(filter, value ?? throw new FieldError($"{at}.value: missing"));
    }

    /// <summary>Quoted scalars are strings; plain ones are booleans or numbers when they read as such.</summary>
    static object Scalar(YamlScalarNode s, string at)
    {
        string v = s.Value ?? "";
        if (s.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted) return v;
        if (IsNull(s)) throw new FieldError($"{at}: expected a value, got null");
        if (v is "true" or "True" or "TRUE") return true;
        if (v is "false" or "False" or "FALSE") return false;
        if (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return Finite(d, v, at);
        return v;
    }

    /// <summary>Checks every parameter against the method's schema: names, scopes, kinds, required ones present.</summary>
    static void Validate(IMergeMethod method, string? baseModel, List<RecipeModel> models, Dictionary<string, ParameterSetting> global,
        Func<string, string, InvalidDataException> error)
    {
        var specs = method.Parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
        string Known() => specs.Count == 0 ? "it takes none" : "known: " + string.Join(", ", specs.Keys);

        foreach (var (name, setting) in global)
        {
            if (!specs.TryGetValue(name, out var spec)) throw error($"parameters.{name}", $"unknown parameter for {method.Name} ({Known()})");
            CheckKind(spec, setting, $"parameters.{name}", error);
        }
        foreach (var m in models)
        {
            foreach (var (name, setting) in m.Parameters)
            {
                string at = $"models[{m.Index}].parameters.{name}";
                if (!specs.TryGetValue(name, out var spec)) throw error(at, $"unknown parameter for {method.Name} ({Known()})");
                if (spec.Scope == ParameterScope.Global) throw error(at, $"'{name}' is a global parameter of {method.Name}; set it under the top-level parameters");
                CheckKind(spec, setting, at, error);
            }
        }
        foreach (var spec in specs.Values.Where(s => s.Default is null))
        {
            if (spec.Scope == ParameterScope.Global)
            {
                if (!global.ContainsKey(spec.Name)) throw error($"parameters.{spec.Name}", $"missing; required by {method.Name}");
                continue;
            }
            if (global.ContainsKey(spec.Name)) continue;
            foreach (var m in models)
            {
                bool isBase = m.Path == baseModel && method.BaseModel != BaseModelUse.Unused;
                if (!isBase && !m.Parameters.ContainsKey(spec.Name))
                    throw error($"models[{m.Index}].parameters.{spec.Name}", $"missing; required by {method.Name} (set it here or under the top-level parameters)");
            }
        }
    }

    static void CheckKind(ParameterSpec spec, ParameterSetting setting, string at, Func<string, string, InvalidDataException> error)
    {
        foreach (var v in setting.Literals)
        {
            bool ok = spec.Kind switch
            {
                ParameterKind.Number => v is double,
                ParameterKind.Bool => v is bool,
                ParameterKind.Choice => v is string s && (spec.Choices is null || spec.Choices.Contains(s)),
                _ => false,
            };
            if (!ok)
            {
                string expected = spec.Kind switch
                {
                    ParameterKind.Number => "a number",
                    ParameterKind.Bool => "true or false",
                    _ => "one of " + string.Join(", ", spec.Choices ?? []),
                };
                throw error(at, $"expected {expected}, got '{ParameterSetting.Literal(v)}'");
            }
        }
    }
}
