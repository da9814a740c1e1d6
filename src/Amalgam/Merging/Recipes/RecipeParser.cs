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
    static readonly string[] Fields = ["name", "merge_method", "base_model", "models", "slices", "parameters", "dtype", "out_dtype", "random_seed", "out_shard_size",
        "output", "rank", "max_error", "peft_double_scale", "skip_undecomposable", "tokenizer_source", "tokenizer", "chat_template"];

    static readonly Dictionary<string, string> Unsupported = new(StringComparer.Ordinal)
    {
        ["modules"] = "per-module definitions are not supported; list whole models under 'models' or layer ranges under 'slices'",
        ["gate_mode"] = "a mergekit-moe field in a merge recipe: a mergekit-moe config has base_model, experts and gate_mode and no merge_method (amalgam merge builds it with MoeMerge)",
        ["experts"] = "a mergekit-moe field in a merge recipe: a mergekit-moe config has base_model, experts and gate_mode and no merge_method (amalgam merge builds it with MoeMerge)",
        ["genome"] = "mergekit-evolve configs are not supported (the evolutionary search loop); fit merge coefficients with `amalgam fit` instead",
        ["tasks"] = "mergekit-evolve configs are not supported (the evolutionary search loop); fit merge coefficients with `amalgam fit` instead",
        ["align_weights"] = "ZipIt alignment is not implemented: it matches neurons across models by feature correlations measured on data before merging, not a per-tensor formula (and mergekit's own zipit.py is an unfinished draft that refers to undefined names)",
        ["metric_method"] = "mergekit's merge metrics are not implemented: that branch's metric_method compares two models' tensors (per-neuron cosine, SMAPE, scale, MSE, attention-head heatmaps with hard-coded head counts) and defines no output; it merges nothing",
    };

    /// <summary>A refusal inside a nested value; the caller prefixes the source.</summary>
    sealed class FieldError(string message) : Exception(message);

    public static MergeRecipe Parse(string yaml, string source, Func<string, IMergeMethod> methods)
    {
        var docs = Documents(yaml, source);
        if (docs.Count != 1)
            throw new InvalidDataException($"{source}: {docs.Count} YAML documents: a multi-stage recipe (mergekit-multi) is run with MergePlan.Load; a single merge is one mapping (merge_method, models, ...)");
        return Guarded(source, () => ParseDocument(docs[0], source, methods, new HashSet<string>()));
    }

    /// <summary>Every document of a file (mergekit-multi: one merge per document, each with a <c>name:</c>).</summary>
    public static IReadOnlyList<MergeRecipe> ParseStages(string yaml, string source, Func<string, IMergeMethod> methods)
    {
        var docs = Documents(yaml, source);
        // mergekit-mega's older form names each document by its out_path, which later documents use as a model path.
        if (docs.Count > 1)
            foreach (var d in docs)
                if (!d.Children.ContainsKey(new YamlScalarNode("name")) && d.Children.TryGetValue(new YamlScalarNode("out_path"), out var outPath))
                {
                    d.Children.Remove(new YamlScalarNode("out_path"));
                    d.Children.Add(new YamlScalarNode("name"), outPath);
                }
        if (docs.Count == 1 && !docs[0].Children.ContainsKey(new YamlScalarNode("name")))
            return [Guarded(source, () => ParseDocument(docs[0], source, methods, new HashSet<string>()))];
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < docs.Count; i++)
        {
            string at = $"{source}: document {i + 1}: name";
            if (!docs[i].Children.TryGetValue(new YamlScalarNode("name"), out var n) || n is not YamlScalarNode { Value: { Length: > 0 } name })
                throw new InvalidDataException($"{at}: missing; every document of a multi-stage recipe names its merge (name:, or mergekit-mega's out_path:)");
            if (!names.Add(name)) throw new InvalidDataException($"{at}: '{name}' is used twice");
        }
        return docs.Select((d, i) => Guarded(source, () => ParseDocument(d, $"{source} (document {i + 1})", methods, names))).ToList();
    }

    static MergeRecipe Guarded(string source, Func<MergeRecipe> parse)
    {
        try { return parse(); }
        catch (FieldError e) { throw new InvalidDataException($"{source}: {e.Message}"); }
    }

    static List<YamlMappingNode> Documents(string yaml, string source)
    {
        try
        {
            // Size, depth and aliases are bounded before the tree is built (Inputs.YamlInput).
            var stream = Inputs.YamlInput.Load(yaml, source);
            if (stream.Documents.Count == 0) throw new InvalidDataException($"{source}: expected one YAML mapping (merge_method, models, ...)");
            return stream.Documents.Select(d => d.RootNode as YamlMappingNode
                ?? throw new InvalidDataException($"{source}: expected one YAML mapping (merge_method, models, ...)")).ToList();
        }
        catch (YamlException e)
        {
            throw new InvalidDataException($"{source}: not valid YAML at line {e.Start.Line}: {CliLine(e.Message)}");
        }
    }

    static MergeRecipe ParseDocument(YamlMappingNode root, string source, Func<string, IMergeMethod> methods, IReadOnlySet<string> stages)
    {
        InvalidDataException Error(string field, string why) => new($"{source}: {field}: {why}");

        // A method may take some global parameters beside merge_method as well (mergekit's examples/cabs.yml).
        IReadOnlyList<string> topLevel = [];
        if (root.Children.TryGetValue(new YamlScalarNode("merge_method"), out var peek) && peek is YamlScalarNode { Value: { } peekName })
            try { topLevel = methods(peekName).TopLevelParameters; }
            catch (Exception e) when (e is InvalidDataException or KeyNotFoundException or ArgumentException) { }
        var fields = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        var topLevelSettings = new Dictionary<string, ParameterSetting>(StringComparer.Ordinal);
        foreach (var (k, v) in root.Children)
        {
            string key = Key(k, "");
            if (Unsupported.TryGetValue(key, out var why)) throw Error(key, why);
            if (topLevel.Contains(key)) { topLevelSettings[key] = Setting(v, key); continue; }
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

        string? baseModel = null, baseStage = null;
        if (fields.TryGetValue("base_model", out var bm))
        {
            string b = Text(bm, "base_model");
            if (stages.Contains(b)) baseStage = b;
            else baseModel = FullPath(b, "base_model");
        }

        RecipeModel Model(string text, IReadOnlyDictionary<string, ParameterSetting> ps, int index, string at)
        {
            var (model, lora) = SplitLora(text, stages);
            return stages.Contains(model)
                ? new RecipeModel("", ps, index) { Stage = model, Lora = lora }
                : new RecipeModel(FullPath(model, at), ps, index) { Lora = lora };
        }

        var models = new List<RecipeModel>();
        List<RecipeSlice>? slices = null;
        if (fields.ContainsKey("models") && fields.ContainsKey("slices")) throw Error("slices", "give either models or slices, not both");
        if (fields.TryGetValue("slices", out var slicesNode))
        {
            if (slicesNode is not YamlSequenceNode { Children.Count: > 0 } sliceSeq) throw Error("slices", "expected a non-empty list of {sources: [{model, layer_range}]}");
            slices = [];
            var distinct = new Dictionary<string, RecipeModel>(StringComparer.Ordinal);
            for (int i = 0; i < sliceSeq.Children.Count; i++)
            {
                string at = $"slices[{i}]";
                if (sliceSeq.Children[i] is not YamlMappingNode sm) throw Error(at, "expected {sources: [...]}");
                YamlSequenceNode? sources = null;
                foreach (var (k, v) in sm.Children)
                {
                    string key = Key(k, at);
                    if (key == "sources") sources = v as YamlSequenceNode ?? throw Error($"{at}.sources", "expected a list of {model, layer_range}");
                    else throw Error($"{at}.{key}", "unknown field (expected sources)");
                }
                if (sources is not { Children.Count: > 0 }) throw Error($"{at}.sources", "missing");
                var list = new List<SliceSource>();
                for (int j = 0; j < sources.Children.Count; j++)
                {
                    string sat = $"{at}.sources[{j}]";
                    if (sources.Children[j] is not YamlMappingNode src) throw Error(sat, "expected {model, layer_range, parameters}");
                    string? modelText = null;
                    int[]? range = null;
                    IReadOnlyDictionary<string, ParameterSetting> ps = new Dictionary<string, ParameterSetting>();
                    foreach (var (k, v) in src.Children)
                    {
                        string key = Key(k, sat);
                        if (key == "model") modelText = Text(v, $"{sat}.model");
                        else if (key == "layer_range")
                        {
                            if (v is not YamlSequenceNode { Children.Count: 2 } r || r.Children.Any(c => c is not YamlScalarNode { Value: { } x } || !int.TryParse(x, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)))
                                throw Error($"{sat}.layer_range", "expected [start, end] (two integers, end exclusive)");
                            range = r.Children.Select(c => int.Parse(((YamlScalarNode)c).Value!, CultureInfo.InvariantCulture)).ToArray();
                        }
                        else if (key == "parameters") ps = Settings(v, $"{sat}.parameters");
                        else throw Error($"{sat}.{key}", "unknown field (expected model, layer_range, parameters)");
                    }
                    if (modelText is null) throw Error($"{sat}.model", "missing");
                    if (range is null) throw Error($"{sat}.layer_range", "missing");
                    var m = Model(modelText, ps, i * 1000 + j, $"{sat}.model");
                    if (!distinct.ContainsKey(m.Reference)) distinct[m.Reference] = m with { Index = distinct.Count, Parameters = new Dictionary<string, ParameterSetting>() };
                    list.Add(new SliceSource(m, range[0], range[1]));
                }
                slices.Add(new RecipeSlice(list));
            }
            models = distinct.Values.ToList();
        }
        else
        {
            if (!fields.TryGetValue("models", out var modelsNode)) throw Error("models", "missing");
            if (modelsNode is not YamlSequenceNode { Children.Count: > 0 } modelSeq) throw Error("models", "expected a non-empty list of {model: PATH, parameters: {...}}");
            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < modelSeq.Children.Count; i++)
            {
                string at = $"models[{i}]";
                RecipeModel m;
                switch (modelSeq.Children[i])
                {
                    case YamlScalarNode s:
                        m = Model(Text(s, at), new Dictionary<string, ParameterSetting>(), i, at);
                        break;
                    case YamlMappingNode map:
                        string? text = null;
                        IReadOnlyDictionary<string, ParameterSetting> ps = new Dictionary<string, ParameterSetting>();
                        foreach (var (k, v) in map.Children)
                        {
                            string key = Key(k, at);
                            if (key == "model") text = Text(v, $"{at}.model");
                            else if (key == "parameters") ps = Settings(v, $"{at}.parameters");
                            else throw Error($"{at}.{key}", "unknown field (expected model, parameters)");
                        }
                        m = Model(text ?? throw Error($"{at}.model", "missing"), ps, i, $"{at}.model");
                        break;
                    default:
                        throw Error(at, "expected {model: PATH, parameters: {...}}");
                }
                // mergekit keys the gathered tensors by model, so a model listed twice is merged once; its parameters
                // are looked up through its listings in order (ConfigReader.parameter), the first that gives a value winning.
                if (seen.TryGetValue(m.Reference, out int first))
                {
                    models[first] = models[first] with { Parameters = FirstListingWins(models[first].Parameters, m.Parameters) };
                    continue;
                }
                seen[m.Reference] = models.Count;
                models.Add(m);
            }
        }

        var global = fields.TryGetValue("parameters", out var pn) ? Settings(pn, "parameters") : new Dictionary<string, ParameterSetting>();
        foreach (var (name, setting) in topLevelSettings)
            if (!global.TryAdd(name, setting)) throw Error(name, $"given both at the top level and under parameters");

        ScalarType? dtype = fields.TryGetValue("dtype", out var dn) ? Dtype(Text(dn, "dtype"), "dtype", Error) : null;
        ScalarType? outDtype = fields.TryGetValue("out_dtype", out var on) ? Dtype(Text(on, "out_dtype"), "out_dtype", Error) : null;
        if (outDtype == ScalarType.Float64) throw Error("out_dtype", "float64 cannot be written to safetensors here; use float32");

        long seed = 0;
        if (fields.TryGetValue("random_seed", out var sn) && !long.TryParse(Text(sn, "random_seed"), NumberStyles.Integer, CultureInfo.InvariantCulture, out seed))
            throw Error("random_seed", $"expected an integer, got '{Text(sn, "random_seed")}'");

        long shard = MergeRecipe.DefaultShardSize;
        if (fields.TryGetValue("out_shard_size", out var zn) && !ByteSize.TryParse(Text(zn, "out_shard_size"), out shard))
            throw Error("out_shard_size", $"expected a size such as 5B, 500M or 1000000, got '{Text(zn, "out_shard_size")}'");

        MergeOutput? output = fields.TryGetValue("output", out var outNode) ? RecipeValues.Output(Text(outNode, "output"), Error) : null;

        int? rank = null;
        double? maxError = null;
        if (fields.TryGetValue("rank", out var rn))
        {
            (rank, bool auto) = RecipeValues.Rank(Text(rn, "rank"), Error);
            if (auto) maxError = 0.01;
        }
        if (fields.TryGetValue("max_error", out var me))
        {
            if (maxError is null) throw Error("max_error", "only with rank: auto");
            if (!double.TryParse(Text(me, "max_error"), NumberStyles.Float, CultureInfo.InvariantCulture, out double e))
                throw Error("max_error", $"expected a number, got '{Text(me, "max_error")}'");
            maxError = e;
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

        bool skip = false;
        if (fields.TryGetValue("skip_undecomposable", out var su) && !bool.TryParse(Text(su, "skip_undecomposable"), out skip))
            throw Error("skip_undecomposable", $"expected true or false, got '{Text(su, "skip_undecomposable")}'");

        return new MergeRecipe
        {
            Name = fields.TryGetValue("name", out var nm) ? Text(nm, "name") : null,
            Method = method,
            BaseModel = baseModel,
            BaseStage = baseStage,
            Models = models,
            Slices = slices,
            Parameters = global,
            Dtype = dtype,
            OutDtype = outDtype,
            RandomSeed = seed,
            OutShardSize = shard,
            Output = output,
            Rank = rank,
            MaxError = maxError,
            PeftDoubleScale = doubleScale,
            SkipUndecomposable = skip,
            Tokenizer = TokenizerField(fields, source),
            ChatTemplate = fields.TryGetValue("chat_template", out var ct) ? Text(ct, "chat_template") : null,
            Source = source,
        }.Checked();

        string Text(YamlNode node, string field) =>
            node is YamlScalarNode { Value: { } v } && !IsNull(node) ? v : throw Error(field, "expected a single value");
    }

    /// <summary><c>tokenizer_source: base | union | model:NAME</c>, or mergekit's <c>tokenizer:</c> block (not both, as in mergekit).</summary>
    static Vocabulary.TokenizerSettings? TokenizerField(Dictionary<string, YamlNode> fields, string source)
    {
        bool hasSource = fields.TryGetValue("tokenizer_source", out var ts), hasBlock = fields.TryGetValue("tokenizer", out var tb);
        if (hasSource && hasBlock) throw new InvalidDataException($"{source}: tokenizer: cannot be given together with tokenizer_source (mergekit refuses both)");
        if (hasSource)
        {
            if (ts is not YamlScalarNode { Value: { } v } || IsNull(ts)) throw new InvalidDataException($"{source}: tokenizer_source: expected a single value");
            if (v is not ("base" or "union") && !v.StartsWith("model:", StringComparison.Ordinal))
                throw new InvalidDataException($"{source}: tokenizer_source: expected base, union or model:NAME, got '{v}'");
            return Vocabulary.TokenizerSettings.FromSource(v);
        }
        if (!hasBlock) return null;
        if (tb is not YamlMappingNode map) throw new FieldError("tokenizer: expected a mapping (source, tokens, pad_to_multiple_of)");
        string src = "union"; // mergekit's TokenizerConfig default
        int? pad = null;
        var tokens = new Dictionary<string, Vocabulary.TokenSetting>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
        {
            string key = Key(k, "tokenizer");
            switch (key)
            {
                case "source":
                    src = v is YamlScalarNode { Value: { Length: > 0 } sv } && !IsNull(v) ? sv : throw new FieldError("tokenizer.source: expected base, union or a model");
                    break;
                case "pad_to_multiple_of":
                    if (IsNull(v)) break;
                    pad = v is YamlScalarNode { Value: { } pv } && int.TryParse(pv, NumberStyles.Integer, CultureInfo.InvariantCulture, out int p) && p > 0 ? p
                        : throw new FieldError("tokenizer.pad_to_multiple_of: expected a positive integer");
                    break;
                case "tokens":
                    if (IsNull(v)) break;
                    if (v is not YamlMappingNode tm) throw new FieldError("tokenizer.tokens: expected a mapping of tokens to {source, force}");
                    foreach (var (tk, tv) in tm.Children)
                    {
                        string token = tk is YamlScalarNode { Value: { Length: > 0 } t } ? t : throw new FieldError("tokenizer.tokens: a token must be a non-empty string");
                        tokens[token] = TokenEntry(tv, $"tokenizer.tokens[{Inputs.Names.Escape(token)}]");
                    }
                    break;
                default:
                    throw new FieldError($"tokenizer.{key}: unknown field (known: source, tokens, pad_to_multiple_of)");
            }
        }
        return new Vocabulary.TokenizerSettings(src, tokens, pad, Block: true);
    }

    /// <summary>One <c>tokens:</c> entry: <c>{source: MODEL | {kind: model_token, model, token | token_id} | {kind: zero}, force}</c>.</summary>
    static Vocabulary.TokenSetting TokenEntry(YamlNode node, string at)
    {
        if (node is not YamlMappingNode m) throw new FieldError($"{at}: expected a mapping (source, force)");
        Vocabulary.TokenEmbeddingSource? source = null;
        bool force = false;
        foreach (var (k, v) in m.Children)
        {
            string key = Key(k, at);
            if (key == "force")
                force = v is YamlScalarNode { Value: { } f } && bool.TryParse(f, out bool b) ? b : throw new FieldError($"{at}.force: expected true or false");
            else if (key == "source") source = EmbeddingSource(v, $"{at}.source");
            else throw new FieldError($"{at}.{key}: unknown field (known: source, force)");
        }
        // mergekit has no default for a listed token's source (its PermutedEmbeddings fails on None).
        return new Vocabulary.TokenSetting(source ?? throw new FieldError($"{at}.source: missing (a model, {{kind: model_token, ...}} or {{kind: zero}})"), force);
    }

    static Vocabulary.TokenEmbeddingSource EmbeddingSource(YamlNode v, string at)
    {
        if (v is YamlScalarNode { Value: { Length: > 0 } model } && !IsNull(v)) return new Vocabulary.ModelRowSource(model);
        if (v is not YamlMappingNode m) throw new FieldError($"{at}: expected a model, {{kind: model_token, model, token}} or {{kind: zero}}");
        var f = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, x) in m.Children)
        {
            string key = Key(k, at);
            if (key is not ("kind" or "model" or "token" or "token_id")) throw new FieldError($"{at}.{key}: unknown field (known: kind, model, token, token_id)");
            f[key] = x is YamlScalarNode { Value: { } s } ? s : throw new FieldError($"{at}.{key}: expected a single value");
        }
        switch (f.GetValueOrDefault("kind"))
        {
            case "zero":
                if (f.Count > 1) throw new FieldError($"{at}: kind: zero takes no other field");
                return new Vocabulary.ZeroSource();
            case "model_token":
                string modelRef = f.TryGetValue("model", out var mr) && mr.Length > 0 ? mr : throw new FieldError($"{at}.model: missing");
                bool hasToken = f.TryGetValue("token", out var tok), hasId = f.TryGetValue("token_id", out var idText);
                if (hasToken == hasId) throw new FieldError($"{at}: give exactly one of token and token_id");
                if (hasId && !(int.TryParse(idText, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id) && id >= 0)) throw new FieldError($"{at}.token_id: expected a non-negative integer, got '{idText}'");
                return new Vocabulary.ModelTokenSource(modelRef, hasToken ? tok : null, hasId ? int.Parse(idText!, CultureInfo.InvariantCulture) : null);
            case null: throw new FieldError($"{at}.kind: missing (model_token or zero)");
            case var other: throw new FieldError($"{at}.kind: expected model_token or zero, got '{other}'");
        }
    }

    /// <summary>
    /// The parameters of a model listed twice: the first listing's, a later listing's where the first has none, and
    /// where the first has filters the later one's value after them (the lookup falls through when no filter matches).
    /// </summary>
    static IReadOnlyDictionary<string, ParameterSetting> FirstListingWins(IReadOnlyDictionary<string, ParameterSetting> first, IReadOnlyDictionary<string, ParameterSetting> later)
    {
        var merged = new Dictionary<string, ParameterSetting>(first, StringComparer.Ordinal);
        foreach (var (name, setting) in later)
        {
            if (!merged.TryGetValue(name, out var earlier)) merged[name] = setting;
            else if (earlier is ConditionalSetting c)
                merged[name] = new ConditionalSetting([.. c.Conditions, .. setting is ConditionalSetting d ? d.Conditions : [new Condition(null, setting)]]);
        }
        return merged;
    }

    /// <summary>mergekit's <c>model+lora</c>: split at the last '+' unless the whole text is an existing folder (or a stage).</summary>
    static (string Model, string? Lora) SplitLora(string text, IReadOnlySet<string> stages)
    {
        int plus = text.LastIndexOf('+');
        if (plus <= 0 || plus == text.Length - 1 || stages.Contains(text) || Directory.Exists(text)) return (text, null);
        return (text[..plus], FullPath(text[(plus + 1)..]));
    }

    static string CliLine(string message) => message.Split('\n')[0].Trim();

    /// <summary>Mapping keys must be plain names (a list or mapping as a key is refused by line).</summary>
    static string Key(YamlNode k, string at) => k is YamlScalarNode s
        ? s.Value ?? ""
        : throw new FieldError($"{(at.Length == 0 ? "" : at + ": ")}line {k.Start.Line}: a key is {(k is YamlSequenceNode ? "a list" : "a mapping")}; keys must be plain names");

    /// <summary>Plain numbers must be finite: NaN or Infinity would silently poison every tensor they touch.</summary>
    static double Finite(double d, string v, string at) =>
        double.IsFinite(d) ? d : throw new FieldError($"{at}: {v} is not a finite number");

    /// <summary>An empty path or one with a NUL would make Path.GetFullPath throw an unnamed ArgumentException (found by fuzzing).</summary>
    static string FullPath(string path, string at = "model") =>
        string.IsNullOrWhiteSpace(path) ? throw new FieldError($"{at}: expected a path, got an empty value")
        : path.Contains('\0') ? throw new FieldError($"{at}: a path cannot contain a NUL character")
        : Path.GetFullPath(path);

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
        // YAML's own spellings of the non-finite floats (.nan, -.inf, ...), which .NET does not parse.
        if (System.Text.RegularExpressions.Regex.IsMatch(v, @"^(?:\.(?:nan|NaN|NAN)|[-+]?\.(?:inf|Inf|INF))$")) return Finite(double.NaN, v, at);
        return v;
    }
}
