using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// mergekit's passthrough: the one model's tensor, unchanged (times its optional <c>scale</c>). With <c>slices</c>
/// it builds frankenmerges: each output layer is a copy of one source layer.
/// </summary>
public sealed class Passthrough : IMergeMethod
{
    public string Name => "passthrough";
    public string Description => "copy the single source's tensor (frankenmerges with slices)";
    public BaseModelUse BaseModel => BaseModelUse.Unused;
    public bool IsRandomized => false;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("scale", ParameterScope.PerModel, ParameterKind.Number, 1.0, "multiplies the tensor (mergekit's passthrough scale)"),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        if (inputs.Models.Count != 1)
            throw new InvalidDataException($"tensor '{inputs.Name}': passthrough takes exactly one model per tensor, got {inputs.Models.Count} (give one source per slice)");
        double scale = Parts.ParameterValues.PerModel(inputs, 0, "scale", 1.0);
        return scale == 1.0 ? inputs.Models[0].clone() : inputs.Models[0] * scale;
    }
}
