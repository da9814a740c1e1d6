using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Training;

/// <summary>
/// Trains a decoder from scratch (normal(0, 0.02) weights, unit norms) on token sequences, or continues training
/// every weight of an existing one (full fine-tuning, as an instruction-tuning stage does).
/// </summary>
public static class BaseTrainer
{
    public sealed record Result(CausalLM Model, IReadOnlyList<TrainingStep> Log);

    public static Result Train(DecoderConfig config, IReadOnlyList<TokenSequence> data, TrainingOptions options, long padId,
        IProgress<TrainingStep>? progress = null)
    {
        config.Validate();
        manual_seed(options.Seed);
        var model = new CausalLM(config, ScalarType.Float32);
        try
        {
            var parameters = model.named_parameters().ToList();
            using (no_grad())
                foreach (var (name, p) in parameters)
                {
                    if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.fill_(1.0);
                    else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
                    else p.normal_(0, 0.02);
                }
            return new Result(model, Continue(model, data, options, padId, progress));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Trains every weight of <paramref name="model"/> in place; the weights are frozen again afterwards.</summary>
    public static IReadOnlyList<TrainingStep> Continue(CausalLM model, IReadOnlyList<TokenSequence> data, TrainingOptions options, long padId,
        IProgress<TrainingStep>? progress = null)
    {
        var parameters = model.parameters().ToList();
        foreach (var p in parameters) p.requires_grad = true;
        try
        {
            return TrainingLoop.Run(model, parameters, data, options, padId, progress);
        }
        finally
        {
            foreach (var p in parameters) p.requires_grad = false;
        }
    }
}
