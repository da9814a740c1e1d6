using static TorchSharp.torch;

namespace Amalgam.Merging.Recipes;

/// <summary>The dtype names a recipe may use (mergekit spells them like PyTorch).</summary>
public static class RecipeDtype
{
    static readonly Dictionary<string, ScalarType> names = new(StringComparer.Ordinal)
    {
        ["float32"] = ScalarType.Float32, ["fp32"] = ScalarType.Float32,
        ["float16"] = ScalarType.Float16, ["fp16"] = ScalarType.Float16, ["half"] = ScalarType.Float16,
        ["bfloat16"] = ScalarType.BFloat16, ["bf16"] = ScalarType.BFloat16,
        ["float64"] = ScalarType.Float64, ["fp64"] = ScalarType.Float64,
    };

    public static bool TryParse(string name, out ScalarType type) => names.TryGetValue(name, out type);

    public static string Known => "float32, float16, bfloat16 (dtype also float64)";

    /// <summary>The config.json spelling of a dtype.</summary>
    public static string TorchName(ScalarType type) => type switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float64 => "float64",
        _ => type.ToString().ToLowerInvariant(),
    };
}
