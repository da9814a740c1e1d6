using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// Model Stock (Jang et al. 2024), per tensor: with offsets δᵢ = θᵢ − θ₀ of N ≥ 2 models, cos θ = the mean over
/// pairs i &lt; j of ⟨δᵢ, δⱼ⟩ / max(‖δᵢ‖‖δⱼ‖, 1e-6) clamped to [−1, 1]; t = N cos θ / (1 + (N − 1) cos θ);
/// result = t · mean(θᵢ) + (1 − t) · θ₀. With <c>filter_wise: true</c> the angle and t are computed per row (the
/// last dimension: one t per output filter; a 1-D tensor is one row), as mergekit does.
/// </summary>
public sealed class ModelStock : IMergeMethod
{
    public string Name => "model_stock";
    public string Description => "interpolate the models' average toward the base by their mutual angle (Jang et al. 2024)";
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public bool IsRandomized => false;
    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("filter_wise", ParameterScope.Global, ParameterKind.Bool, false, "one interpolation factor per row instead of per tensor"),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        var b = inputs.Base ?? throw new InvalidDataException($"tensor '{inputs.Name}': model_stock needs a base model");
        int n = inputs.Models.Count;
        if (n < 2) throw new InvalidDataException($"tensor '{inputs.Name}': model_stock needs at least two models besides the base, got {n}");
        var ws = inputs.Models.Select(m => m.to(b.dtype)).ToList();
        var avg = stack(ws, 0).mean([0L]);
        if (Parts.ParameterValues.Bool(inputs.Global, "filter_wise") ?? false)
        {
            var rows = (Tensor x) => x.dim() == 1 ? x.unsqueeze(0) : x;
            var offs = ws.Select(w => rows(w - b)).ToList();
            Tensor? sum = null;
            int count = 0;
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++)
                {
                    var np = (offs[i].norm(-1) * offs[j].norm(-1)).clamp_min(1e-6);
                    var c = ((offs[i] * offs[j]).sum(-1) / np).clamp(-1.0, 1.0);
                    sum = sum is null ? c : sum + c;
                    count++;
                }
            var cosRow = (sum! / count).unsqueeze(-1);
            var tRow = cosRow * n / (cosRow * (n - 1) + 1);
            return (tRow * rows(avg) + (1 - tRow) * rows(b)).reshape(b.shape).MoveToOuterDisposeScope();
        }
        var offsets = ws.Select(w => (w - b).reshape(-1)).ToList();
        double cosSum = 0; int pairs = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
            {
                double np = offsets[i].norm().ToDouble() * offsets[j].norm().ToDouble();
                double c = (offsets[i] * offsets[j]).sum().ToDouble() / Math.Max(np, 1e-6);
                cosSum += Math.Clamp(c, -1, 1); pairs++;
            }
        double cos = cosSum / pairs;
        double t = n * cos / (1 + (n - 1) * cos);
        return (avg * t + b * (1 - t)).MoveToOuterDisposeScope();
    }
}
