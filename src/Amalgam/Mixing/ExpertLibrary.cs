using Amalgam.Experts;
using Amalgam.Models;

namespace Amalgam.Mixing;

/// <summary>
/// K LoRA experts installed on one base model for batched mixing: every linear layer that any expert adapts gets
/// the experts' stacked factors, and a forward whose <see cref="DecoderInput.Mixing"/> is set adds each row's
/// mixture Σₖ wₖ·sₖ·Bₖ(Aₖx) in factored form. The base weights are never touched. Dispose to uninstall.
/// </summary>
public sealed class ExpertLibrary : IDisposable
{
    private readonly CausalLM model;
    private readonly List<AdaptableLinear> installed = [];

    public ExpertLibrary(CausalLM model, IReadOnlyList<LoraAdapter> experts)
    {
        if (experts.Count == 0) throw new ArgumentException("an expert library needs at least one expert");
        this.model = model;
        Names = experts.Select(e => e.Name).ToList();
        foreach (var e in experts)
        {
            e.Validate(model);
            // A DoRA update rescales W's rows (not a factored Σ wₖ·sₖ·Bₖ·Aₖ); a saved module is a whole copy.
            e.RequirePlainLora("in an expert library (per-row factored mixing)");
        }
        foreach (var (module, layer) in model.Linears)
        {
            var deltas = experts.Select(e => e.Deltas.GetValueOrDefault(module)).ToList();
            if (deltas.All(d => d is null)) continue;
            if (layer.Mixture is not null) throw new InvalidOperationException($"{module}: another expert library is installed");
            layer.Mixture = new StackedFactors(deltas, layer.InFeatures, layer.OutFeatures);
            installed.Add(layer);
        }
    }

    /// <summary>The experts' names, in weight-column order.</summary>
    public IReadOnlyList<string> Names { get; }

    public int Count => Names.Count;

    public void Dispose()
    {
        foreach (var layer in installed)
        {
            layer.Mixture?.Dispose();
            layer.Mixture = null;
        }
        installed.Clear();
    }
}
