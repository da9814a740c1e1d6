using static TorchSharp.torch;

namespace Amalgam.Merging.Recipes;

/// <summary>What the merge produces.</summary>
public enum MergeOutput
{
    /// <summary>A full checkpoint.</summary>
    Model,
    /// <summary>A PEFT adapter: the best rank-k factorisation of (merged − base) per layer (LoRA inputs only).</summary>
    Adapter,
    /// <summary>A PEFT adapter holding the exact concatenation of the inputs' factors (linear combinations only).</summary>
    Cat,
    /// <summary>PEFT's <c>linear</c> combination in A/B space: approximate (cross terms), for compatibility only.</summary>
    FactorLinear,
}

/// <summary>One entry of <c>models:</c>, its path already resolved against the working directory.</summary>
public sealed record RecipeModel(string Path, IReadOnlyDictionary<string, ParameterSetting> Parameters, int Index);

/// <summary>
/// A merge recipe in mergekit's schema (<c>merge_method</c>, <c>base_model</c>, <c>models</c>, <c>parameters</c>,
/// <c>dtype</c>, <c>out_dtype</c>) plus Amalgam's <c>random_seed</c>, <c>out_shard_size</c>, <c>output</c> and
/// <c>rank</c>, validated against the method's parameter schema when it is loaded.
/// </summary>
public sealed record MergeRecipe
{
    public required IMergeMethod Method { get; init; }
    public string? BaseModel { get; init; }
    public required IReadOnlyList<RecipeModel> Models { get; init; }
    public required IReadOnlyDictionary<string, ParameterSetting> Parameters { get; init; }
    /// <summary>The dtype inputs are converted to before merging: float32 unless the recipe says float64.</summary>
    public ScalarType ComputeDtype { get; init; } = ScalarType.Float32;
    /// <summary>The recipe's <c>dtype</c>, when given (also the output dtype when <c>out_dtype</c> is absent).</summary>
    public ScalarType? Dtype { get; init; }
    public ScalarType? OutDtype { get; init; }
    public long RandomSeed { get; init; }
    /// <summary>Largest shard in bytes; mergekit's default is 5 GB.</summary>
    public long OutShardSize { get; init; } = 5_000_000_000;
    /// <summary>Null means: <see cref="MergeOutput.Adapter"/> for LoRA inputs, <see cref="MergeOutput.Model"/> otherwise.</summary>
    public MergeOutput? Output { get; init; }
    /// <summary>Rank of an <c>output: adapter</c> result; null means the largest input rank.</summary>
    public int? Rank { get; init; }
    /// <summary>
    /// Amalgam: reproduce PEFT's svd types, which weight the already-scaled ΔWᵢ = sᵢ·Bᵢ·Aᵢ by wᵢ·sᵢ (the scale twice);
    /// off by default, where the scale is applied once. Only with LoRA inputs and output: adapter.
    /// </summary>
    public bool PeftDoubleScale { get; init; }
    /// <summary>Where the recipe came from (a file, or "command line"), for error messages.</summary>
    public string Source { get; init; } = "recipe";
    /// <summary>The recipe as YAML, copied into the output folder as <c>merge_recipe.yaml</c>.</summary>
    public string Yaml { get; init; } = "";

    /// <summary>Reads and validates a recipe file; <paramref name="methods"/> defaults to <see cref="MergeMethods.Get"/>.</summary>
    public static MergeRecipe Load(string file, Func<string, IMergeMethod>? methods = null) =>
        RecipeParser.Parse(Inputs.InputFiles.ReadText(file), System.IO.Path.GetFileName(file), methods ?? MergeMethods.Get);

    public static MergeRecipe Parse(string yaml, string source = "recipe", Func<string, IMergeMethod>? methods = null) =>
        RecipeParser.Parse(yaml, source, methods ?? MergeMethods.Get);
}
