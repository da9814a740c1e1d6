using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// mergekit's <c>encoder_decoder_weighted</c> (for Whisper-like encoder-decoders): a weighted average whose weights
/// depend on the tensor's name. A name containing "decoder" and "encoder_attn" (cross-attention) takes the cross
/// weights, one containing only "decoder" the decoder weights, and every other tensor (the encoder, and anything
/// outside both, such as proj_out) the encoder weights. Each list of weights is normalised to sum 1 (uniform when
/// it sums to exactly 0); cross_weightᵢ defaults to (encoder_weightᵢ + decoder_weightᵢ) / 2.
/// </summary>
public sealed class EncoderDecoderWeighted : IMergeMethod
{
    public string Name => "encoder_decoder_weighted";
    public string Description => "weighted average with separate per-model weights for encoder, decoder and cross-attention tensors (mergekit)";
    public BaseModelUse BaseModel => BaseModelUse.Unused;
    public bool IsRandomized => false;

    /// <summary>The default of cross_weight is computed per model, so the schema holds its formula.</summary>
    public const string CrossDefault = "(encoder_weight + decoder_weight) / 2";

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("encoder_weight", ParameterScope.PerModel, ParameterKind.Number, null, "weight of tensors outside the decoder"),
        new("decoder_weight", ParameterScope.PerModel, ParameterKind.Number, null, "weight of decoder tensors other than cross-attention"),
        new("cross_weight", ParameterScope.PerModel, ParameterKind.Number, CrossDefault, "weight of the decoder's cross-attention (encoder_attn) tensors"),
    ];

    /// <summary>Which weights a tensor takes, by mergekit's substring rule.</summary>
    public static string Part(string tensorName) =>
        !tensorName.Contains("decoder", StringComparison.Ordinal) ? "encoder_weight"
        : tensorName.Contains("encoder_attn", StringComparison.Ordinal) ? "cross_weight" : "decoder_weight";

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        int n = inputs.Models.Count;
        if (n == 0) throw new InvalidDataException($"tensor '{inputs.Name}': encoder_decoder_weighted needs at least one model");
        string part = Part(inputs.Name);
        double Get(int i, string name)
        {
            double v = ParameterValues.PerModel(inputs, i, name, double.NaN);
            return double.IsNaN(v) ? throw new InvalidDataException($"parameter '{name}': no value for model {i} (tensor '{inputs.Name}')") : v;
        }
        var weights = new double[n];
        for (int i = 0; i < n; i++)
        {
            weights[i] = part != "cross_weight" ? Get(i, part)
                : inputs.ModelParameters[i].Has("cross_weight") || inputs.Global.Has("cross_weight") ? Get(i, "cross_weight")
                : (Get(i, "encoder_weight") + Get(i, "decoder_weight")) / 2;
        }
        double total = 0;
        foreach (var w in weights) total += w; // left to right, as Python's sum
        var dtype = inputs.Models[0].dtype;
        Tensor? sum = null;
        for (int i = 0; i < n; i++)
        {
            double w = total == 0 ? 1.0 / n : weights[i] / total;
            var term = inputs.Models[i].to(dtype) * w;
            sum = sum is null ? term : sum + term;
        }
        return sum!.MoveToOuterDisposeScope();
    }
}
