using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;

namespace Amalgam.Merging.Lora;

/// <summary>
/// For outputs that recombine factors (<c>cat</c>, <c>factor_linear</c>), the coefficient cᵢ of each expert's update
/// in the merged update Σ cᵢ·ΔWᵢ, following mergekit: <c>linear</c> is Σ wᵢθᵢ / Σ wᵢ (normalize, default true),
/// so cᵢ = wᵢ / Σ w; <c>task_arithmetic</c> is θ0 + λ·Σ wᵢδᵢ (normalize default false), so cᵢ = λ·wᵢ (/ Σ w).
/// Other methods are not linear in the updates and are refused.
/// </summary>
public static class LinearCoefficients
{
    public static readonly string[] Methods = ["linear", "task_arithmetic"];

    public static bool Supports(IMergeMethod method) => Methods.Contains(method.Name);

    public static double[] For(MergeInputSet inputs, string tensor)
    {
        var method = inputs.Recipe.Method;
        var global = inputs.Resolver.Global(tensor);
        var w = inputs.Models.Select(m => inputs.Resolver.ForModel(m.Model, tensor).Number("weight", 1.0)).ToArray();
        double sum = w.Sum();
        switch (method.Name)
        {
            case "linear":
                if (!global.Bool("normalize", true))
                {
                    if (Math.Abs(sum - 1) > 1e-12)
                        throw new InvalidDataException($"tensor '{tensor}': linear without normalize and weights summing to {sum} also scales the base weights; that is not a low-rank update");
                    return w;
                }
                if (sum == 0) throw new InvalidDataException($"tensor '{tensor}': linear weights sum to 0");
                return w.Select(x => x / sum).ToArray();
            case "task_arithmetic":
                double lambda = global.Number("lambda", 1.0);
                bool normalize = global.Bool("normalize", false);
                if (normalize && sum == 0) throw new InvalidDataException($"tensor '{tensor}': task_arithmetic weights sum to 0");
                return w.Select(x => lambda * (normalize ? x / sum : x)).ToArray();
            default:
                throw new InvalidDataException($"output: the factor outputs (cat, factor_linear) need a linear combination of the experts ({string.Join(", ", Methods)}), not {method.Name}; use output: adapter (truncated SVD) or output: model");
        }
    }
}
