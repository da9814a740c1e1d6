using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>Weighted average of whole weights: <c>Σ wᵢθᵢ / Σ wᵢ</c> (or the plain weighted sum without normalize).</summary>
public sealed class Linear : IMergeMethod
{
    public string Name => "linear";
    public string Description => "weighted average of the models' weights (Wortsman et al. 2022, model soups)";
    public BaseModelUse BaseModel => BaseModelUse.Unused;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("weight", ParameterScope.PerModel, ParameterKind.Number, 1.0, "wᵢ"),
        new("normalize", ParameterScope.Global, ParameterKind.Bool, true, "divide by Σ wᵢ"),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        if (inputs.Models.Count == 0) throw new InvalidDataException($"tensor '{inputs.Name}': linear needs at least one model");
        var dtype = inputs.Models[0].dtype;
        Tensor? sum = null;
        double wsum = 0;
        for (int i = 0; i < inputs.Models.Count; i++)
        {
            double w = ParameterValues.PerModel(inputs, i, "weight", 1.0);
            wsum += w;
            var term = inputs.Models[i].to(dtype) * w;
            sum = sum is null ? term : sum + term;
        }
        if (ParameterValues.Bool(inputs.Global, "normalize") ?? true)
        {
            if (wsum == 0) throw new InvalidDataException($"parameter 'weight': the weights sum to 0, cannot normalize (tensor '{inputs.Name}')");
            sum = sum! / wsum;
        }
        return sum!.MoveToOuterDisposeScope();
    }
}
