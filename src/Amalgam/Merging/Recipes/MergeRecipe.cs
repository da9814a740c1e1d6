using System.Globalization;
using System.Text;
using static TorchSharp.torch;

namespace Amalgam.Merging.Recipes;

/// <summary>What the merge produces.</summary>
public enum MergeOutput
{
    /// <summary>A full checkpoint.</summary>
    Model,
    /// <summary>A PEFT adapter: the best rank-k factorisation of (merged − base) per layer (LoRA inputs, or extraction from full fine-tunes).</summary>
    Adapter,
    /// <summary>A PEFT adapter holding the exact concatenation of the inputs' factors (linear combinations only).</summary>
    Cat,
    /// <summary>PEFT's <c>linear</c> combination in A/B space: approximate (cross terms), for compatibility only.</summary>
    FactorLinear,
}

/// <summary>
/// One input of a merge: a folder (resolved against the working directory), or the output of an earlier stage of a
/// multi-stage plan (<see cref="Stage"/>), optionally with a LoRA adapter applied first (mergekit's <c>model+lora</c>).
/// </summary>
public sealed record RecipeModel(string Path, IReadOnlyDictionary<string, ParameterSetting> Parameters, int Index)
{
    /// <summary>A PEFT adapter folder applied to the model before merging (<c>model: DIR+LORA_DIR</c>).</summary>
    public string? Lora { get; init; }
    /// <summary>The name of an earlier stage whose output this is; <see cref="Path"/> is filled in when the stage has run.</summary>
    public string? Stage { get; init; }
    /// <summary>How the recipe refers to it: the stage name or the path, with <c>+LORA</c>.</summary>
    public string Reference => (Stage ?? Path) + (Lora is null ? "" : "+" + Lora);
}

/// <summary>One source of a slice: layers [Start, End) of a model (mergekit's <c>layer_range</c>).</summary>
public sealed record SliceSource(RecipeModel Model, int Start, int End)
{
    public int Length => End - Start;
}

/// <summary>One output slice: its sources all have the same number of layers, merged layer by layer.</summary>
public sealed record RecipeSlice(IReadOnlyList<SliceSource> Sources)
{
    public int Length => Sources[0].Length;
}

/// <summary>
/// The typed merge plan: a recipe in mergekit's schema (<c>merge_method</c>, <c>base_model</c>, <c>models</c> or
/// <c>slices</c>, <c>parameters</c>, <c>dtype</c>, <c>out_dtype</c>, <c>tokenizer_source</c>) plus Amalgam's
/// <c>random_seed</c>, <c>out_shard_size</c>, <c>output</c>, <c>rank</c>, <c>max_error</c> and
/// <c>skip_undecomposable</c>. A recipe file, the command-line flags and library callers all build this one value
/// (<see cref="Checked"/> validates it and coerces every parameter to its type); overrides are <c>with</c>
/// expressions; <see cref="ToYaml"/> writes it back (the <c>merge_recipe.yaml</c> beside every result).
/// </summary>
public sealed record MergeRecipe
{
    public required IMergeMethod Method { get; init; }
    public string? BaseModel { get; init; }
    /// <summary>The base model is the output of this earlier stage (multi-stage plans); <see cref="BaseModel"/> is filled in when it has run.</summary>
    public string? BaseStage { get; init; }
    /// <summary>The models in recipe order; with <see cref="Slices"/>, every distinct source (in order of first use).</summary>
    public required IReadOnlyList<RecipeModel> Models { get; init; }
    /// <summary>mergekit's <c>slices:</c>; null when the recipe lists whole models.</summary>
    public IReadOnlyList<RecipeSlice>? Slices { get; init; }
    public required IReadOnlyDictionary<string, ParameterSetting> Parameters { get; init; }
    /// <summary>The dtype inputs are converted to before merging: float32 unless the recipe says float64.</summary>
    public ScalarType ComputeDtype => Dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
    /// <summary>The recipe's <c>dtype</c>, when given (also the output dtype when <c>out_dtype</c> is absent).</summary>
    public ScalarType? Dtype { get; init; }
    public ScalarType? OutDtype { get; init; }
    public long RandomSeed { get; init; }
    /// <summary>Largest shard in bytes; mergekit's default is 5 GB.</summary>
    public long OutShardSize { get; init; } = DefaultShardSize;
    /// <summary>Null means: <see cref="MergeOutput.Adapter"/> for LoRA inputs, <see cref="MergeOutput.Model"/> otherwise.</summary>
    public MergeOutput? Output { get; init; }
    /// <summary>Rank of an <c>output: adapter</c> result; null means the largest input rank (LoRA inputs) unless <see cref="MaxError"/> is set.</summary>
    public int? Rank { get; init; }
    /// <summary><c>rank: auto</c>: per module the smallest rank whose relative Frobenius error is at most this.</summary>
    public double? MaxError { get; init; }
    /// <summary>
    /// Amalgam: reproduce PEFT's svd types, which weight the already-scaled ΔWᵢ = sᵢ·Bᵢ·Aᵢ by wᵢ·sᵢ (the scale twice);
    /// off by default, where the scale is applied once. Only with LoRA inputs and output: adapter.
    /// </summary>
    public bool PeftDoubleScale { get; init; }
    /// <summary>Extraction from full fine-tunes: drop tensors a LoRA cannot hold (norms, embeddings) instead of refusing.</summary>
    public bool SkipUndecomposable { get; init; }
    /// <summary>
    /// <c>tokenizer_source</c> (base, union, model:REF) or the <c>tokenizer:</c> block; null (the default) copies the
    /// reference's tokenizer files and merges embeddings as stored. When set, the output vocabulary is built and every
    /// input's embedding rows are permuted into it before merging (<see cref="Vocabulary.VocabularyPlan"/>).
    /// </summary>
    public Vocabulary.TokenizerSettings? Tokenizer { get; init; }
    /// <summary><c>chat_template</c>: <c>auto</c> (the tokenizer source's, the default), a built-in name (<see cref="ChatTemplates.Known"/>) or a Jinja template.</summary>
    public string? ChatTemplate { get; init; }
    /// <summary>The stage name in a multi-stage plan (<c>name:</c>).</summary>
    public string? Name { get; init; }
    /// <summary>Where the recipe came from (a file, or "command line"), for error messages.</summary>
    public string Source { get; init; } = "recipe";

    public const long DefaultShardSize = 5_000_000_000;

    /// <summary>Reads and validates a recipe file (one document); <paramref name="methods"/> defaults to <see cref="MergeMethods.Get"/>.</summary>
    public static MergeRecipe Load(string file, Func<string, IMergeMethod>? methods = null) =>
        RecipeParser.Parse(Inputs.InputFiles.ReadText(file), System.IO.Path.GetFileName(file), methods ?? MergeMethods.Get);

    public static MergeRecipe Parse(string yaml, string source = "recipe", Func<string, IMergeMethod>? methods = null) =>
        RecipeParser.Parse(yaml, source, methods ?? MergeMethods.Get);

    /// <summary>The validated plan: every parameter known to the method, given where it may be, of its type (coerced
    /// once here: <c>rescale: true</c> becomes <c>l1</c>), required ones present; output, rank and base consistent.</summary>
    public MergeRecipe Checked() => PlanCheck.Check(this);

    /// <summary>Every model the merge reads, base included, as written (for dependency order).</summary>
    public IEnumerable<string> References =>
        (BaseStage is not null ? [BaseStage] : Array.Empty<string>()).Concat(Models.Where(m => m.Stage is not null).Select(m => m.Stage!));

    /// <summary>The plan as mergekit-schema YAML; <see cref="Parse"/> of it gives this plan back.</summary>
    public string ToYaml()
    {
        var y = new StringBuilder();
        if (Name is not null) y.Append("name: ").AppendLine(YamlText.Scalar(Name));
        y.Append("merge_method: ").AppendLine(YamlText.Scalar(Method.Name));
        if ((BaseStage ?? BaseModel) is { } b) y.Append("base_model: ").AppendLine(YamlText.Scalar(b));
        static string Params(IReadOnlyDictionary<string, ParameterSetting> ps) =>
            "{" + string.Join(", ", ps.Select(p => $"{p.Key}: {p.Value.ToYaml()}")) + "}";
        if (Slices is null)
        {
            y.AppendLine("models:");
            foreach (var m in Models)
            {
                y.Append("  - model: ").AppendLine(YamlText.Scalar(m.Reference));
                if (m.Parameters.Count > 0) y.Append("    parameters: ").AppendLine(Params(m.Parameters));
            }
        }
        else
        {
            y.AppendLine("slices:");
            foreach (var s in Slices)
            {
                y.AppendLine("  - sources:");
                foreach (var src in s.Sources)
                {
                    y.Append("      - model: ").AppendLine(YamlText.Scalar(src.Model.Reference));
                    y.Append("        layer_range: [").Append(src.Start).Append(", ").Append(src.End).AppendLine("]");
                    if (src.Model.Parameters.Count > 0) y.Append("        parameters: ").AppendLine(Params(src.Model.Parameters));
                }
            }
        }
        if (Parameters.Count > 0)
        {
            y.AppendLine("parameters:");
            foreach (var (n, v) in Parameters) y.Append("  ").Append(n).Append(": ").AppendLine(v.ToYaml());
        }
        if (Dtype is { } d) y.Append("dtype: ").AppendLine(RecipeDtype.TorchName(d));
        if (OutDtype is { } o) y.Append("out_dtype: ").AppendLine(RecipeDtype.TorchName(o));
        y.Append("random_seed: ").AppendLine(RandomSeed.ToString(CultureInfo.InvariantCulture));
        if (OutShardSize != DefaultShardSize) y.Append("out_shard_size: ").AppendLine(OutShardSize.ToString(CultureInfo.InvariantCulture));
        if (Output is { } output) y.Append("output: ").AppendLine(OutputName(output));
        if (MaxError is { } e) y.Append("rank: auto\nmax_error: ").AppendLine(e.ToString("R", CultureInfo.InvariantCulture));
        else if (Rank is { } r) y.Append("rank: ").AppendLine(r.ToString(CultureInfo.InvariantCulture));
        if (PeftDoubleScale) y.AppendLine("peft_double_scale: true");
        if (SkipUndecomposable) y.AppendLine("skip_undecomposable: true");
        if (Tokenizer is { } t) y.Append(t.ToYaml());
        if (ChatTemplate is { } c) y.Append("chat_template: ").AppendLine(YamlText.Scalar(c));
        return y.ToString();
    }

    public static string OutputName(MergeOutput o) => o switch
    {
        MergeOutput.Model => "model",
        MergeOutput.Adapter => "adapter",
        MergeOutput.Cat => "cat",
        MergeOutput.FactorLinear => "factor_linear",
        _ => o.ToString(),
    };
}
