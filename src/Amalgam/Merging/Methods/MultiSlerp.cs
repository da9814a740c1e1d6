using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// mergekit's multislerp: a weighted spherical mean of any number of models (or of their task vectors over a base),
/// per tensor flattened. With vᵢ, weights wᵢ (divided by Σw when <c>normalize_weights</c>), norms nᵢ = ‖vᵢ‖ and
/// uᵢ = vᵢ / (nᵢ + ε): m = Σ wᵢuᵢ normalised; tangent vectors τᵢ = uᵢ − ⟨uᵢ, m⟩·m; τ = Σ wᵢτᵢ;
/// result = (m·cos‖τ‖ + τ·sin‖τ‖ / ‖τ‖)·Σ wᵢnᵢ with ‖τ‖ taken + ε. When ‖Σ wᵢuᵢ‖ &lt; ε: the weighted sum for two
/// models, an error otherwise.
/// </summary>
public sealed class MultiSlerp : IMergeMethod
{
    public string Name => "multislerp";
    public string Description => "weighted spherical mean of several models or task vectors (mergekit multislerp)";
    public BaseModelUse BaseModel => BaseModelUse.Optional;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("weight", ParameterScope.PerModel, ParameterKind.Number, null, "wᵢ"),
        new("normalize_weights", ParameterScope.Global, ParameterKind.Bool, true, "divide the weights by their sum"),
        new("eps", ParameterScope.Global, ParameterKind.Number, 1e-8, "ε of the normalisations", Range: NumberRange.Positive),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        int n = inputs.Models.Count;
        var b = inputs.Base;
        var dtype = (b ?? inputs.Models[0]).dtype;
        if (n == 1) return inputs.Models[0].to(dtype).clone().MoveToOuterDisposeScope();
        if (n == 0) throw new InvalidDataException($"tensor '{inputs.Name}': multislerp needs at least one model");
        double eps = ParameterValues.Number(inputs.Global, "eps") ?? 1e-8;
        var w = Enumerable.Range(0, n).Select(i => ParameterValues.PerModel(inputs, i, "weight", double.NaN)).ToArray();
        if (ParameterValues.Bool(inputs.Global, "normalize_weights") ?? true)
        {
            double sum = w.Sum();
            w = w.Select(x => x / sum).ToArray();
        }
        var shape = inputs.Models[0].shape;
        var vs = inputs.Models.Select(m => (b is null ? m.to(dtype) : m.to(dtype) - b).reshape(-1)).ToList();
        var flat = stack(vs, 0);
        var weights = tensor(w, dtype: dtype).unsqueeze(1);
        var norms = flat.norm(-1, keepdim: true);
        var units = flat / (norms + eps);
        var mean = (units * weights).sum(dim: 0);
        double meanNorm = mean.norm().ToDouble();
        Tensor result;
        if (meanNorm < eps)
        {
            if (n != 2) throw new InvalidDataException($"tensor '{inputs.Name}': multislerp: the weighted mean direction is zero (the models cancel out)");
            result = (flat[0] * w[0] + flat[1] * w[1]).reshape(shape);
        }
        else
        {
            mean = mean / meanNorm;
            var dots = (units * mean).sum(-1, keepdim: true);
            var tangent = ((units - dots * mean) * weights).sum(dim: 0);
            double tn = tangent.norm().ToDouble() + eps;
            var onSphere = mean * Math.Cos(tn) + tangent * (Math.Sin(tn) / tn);
            double avgNorm = (norms.squeeze(-1) * weights.squeeze(1)).sum().ToDouble();
            result = (onSphere * avgNorm).reshape(shape);
        }
        return (b is null ? result : result + b).MoveToOuterDisposeScope();
    }
}
