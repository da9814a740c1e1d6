using Amalgam.Experts;
using Amalgam.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Amalgam.Training;

/// <summary>
/// Trains a LoRA adapter on a frozen base: factors are created for every module the config targets (A with PEFT's
/// Kaiming-uniform initialisation, B zero, so training starts from the base), attached in factored form, and
/// optimised with the loss on target tokens only.
/// </summary>
public static class LoraTrainer
{
    static readonly object InitLock = new();

    public sealed record Result(LoraAdapter Adapter, IReadOnlyList<TrainingStep> Log);

    public static Result Train(CausalLM model, LoraConfig config, string name, IReadOnlyList<TokenSequence> data,
        TrainingOptions options, long padId, IProgress<TrainingStep>? progress = null)
    {
        config.Validate();
        var modules = model.Linears.Keys.Where(m => LoraTargets.IsTargeted(config, m, CausalLM.OutputLayer)).ToList();
        if (modules.Count == 0) throw new ArgumentException($"target_modules {config.TargetModules} selects no layer of {model.Config.Architecture}");
        var deltas = new List<(string Module, LowRankDelta Delta)>();
        var parameters = new List<Parameter>();
        // The seed and the draws share libtorch's global generator: one initialisation at a time, so an adapter
        // trained next to others (suite build --jobs) starts from the same factors as one trained alone.
        lock (InitLock)
        {
            manual_seed(options.Seed);
            foreach (var module in modules)
            {
                var layer = model.Linears[module];
                int r = LoraTargets.Rank(config, module);
                double bound = 1.0 / Math.Sqrt(layer.InFeatures); // kaiming_uniform_(a=√5) on [r, in]
                var a = new Parameter(empty(r, layer.InFeatures, ScalarType.Float32).uniform_(-bound, bound));
                var b = new Parameter(zeros(layer.OutFeatures, r, ScalarType.Float32));
                var delta = new LowRankDelta(a, b, LoraTargets.Scale(config, module));
                layer.Attach(delta);
                deltas.Add((module, delta));
                parameters.AddRange([a, b]);
            }
        }
        try
        {
            var log = TrainingLoop.Run(model, parameters, data, options, padId, progress);
            var factors = deltas.ToDictionary(d => d.Module, d => (d.Delta.A.detach().clone(), d.Delta.B.detach().clone()));
            return new Result(new LoraAdapter(name, config, factors), log);
        }
        finally
        {
            foreach (var (module, delta) in deltas) model.Linears[module].Detach(delta);
            foreach (var p in parameters) p.Dispose();
        }
    }
}
