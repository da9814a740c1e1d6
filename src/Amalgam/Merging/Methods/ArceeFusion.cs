using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// mergekit's arcee_fusion: keep only the other model's most important changes over the base. With θ₁ the other
/// model and δ = θ₁ − θ₀: importance I = |δ| · KL(p‖q) per row (last dimension), p = softmax(θ₁) + 1e-8,
/// q = softmax(θ₀) + 1e-8, KL = Σ p·log(p/q); threshold τ = median(I) + 1.5·(Q₃ − Q₁) (median the lower middle value,
/// quartiles linearly interpolated, as torch.median / torch.quantile); result θ₀ + δ·[I ≥ τ].
/// mergekit estimates the quartiles from 10⁶ random entries of larger tensors; Amalgam computes them exactly.
/// </summary>
public sealed class ArceeFusion : IMergeMethod
{
    public string Name => "arcee_fusion";
    public string Description => "keep the other model's changes whose importance (|δ| × row KL divergence) is an outlier (mergekit arcee_fusion)";
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public bool IsRandomized => false;
    public IReadOnlyList<ParameterSpec> Parameters { get; } = [];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        var b = inputs.Base ?? throw new InvalidDataException($"tensor '{inputs.Name}': arcee_fusion needs a base model");
        if (inputs.Models.Count != 1)
            throw new InvalidDataException($"tensor '{inputs.Name}': arcee_fusion merges the base with exactly one other model, got {inputs.Models.Count}");
        var follow = inputs.Models[0].to(b.dtype);
        var delta = follow - b;
        var p = nn.functional.softmax(follow, -1) + 1e-8;
        var q = nn.functional.softmax(b, -1) + 1e-8;
        var kl = (p * (p / q).log()).sum(-1);
        var importance = delta.abs() * kl.unsqueeze(-1);
        var sorted = importance.reshape(-1).sort().Values;
        long count = sorted.numel();
        double At(long i) => sorted[i].ToDouble();
        double Quantile(double f)
        {
            double pos = f * (count - 1);
            long lo = (long)Math.Floor(pos), hi = Math.Min(lo + 1, count - 1);
            return At(lo) + (pos - lo) * (At(hi) - At(lo));
        }
        double median = At((count - 1) / 2);
        double threshold = median + 1.5 * (Quantile(0.75) - Quantile(0.25));
        var mask = (importance >= threshold).to(b.dtype);
        return (b + delta * mask).MoveToOuterDisposeScope();
    }
}
