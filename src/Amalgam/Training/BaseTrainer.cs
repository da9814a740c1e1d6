using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Training;

/// <summary>Trains a decoder from scratch (normal(0, 0.02) weights, unit norms) on token sequences.</summary>
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
            foreach (var (_, p) in parameters) p.requires_grad = true;
            var log = TrainingLoop.Run(model, parameters.Select(p => p.parameter).ToList(), data, options, padId, progress);
            foreach (var (_, p) in parameters) p.requires_grad = false;
            return new Result(model, log);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
