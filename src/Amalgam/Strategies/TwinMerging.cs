using System.Text.Json;
using Amalgam.Experts;
using Amalgam.Merging.Lora;
using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Strategies;

/// <summary>
/// How Twin-Merging compresses each expert's exclusive knowledge: to a fixed rank, or to a ratio of each module's
/// full rank min(out, in). Neither given: the expert's own rank (so the exclusive library stores what the experts do).
/// </summary>
public sealed record TwinMergingOptions(int? ExclusiveRank = null, double? ExclusiveRatio = null)
{
    public int RankFor(long outFeatures, long inFeatures, int expertRank)
    {
        if (ExclusiveRank is int r) return r >= 1 ? r : throw new ArgumentException($"exclusive rank must be ≥ 1, got {r}");
        if (ExclusiveRatio is double q)
            return q is > 0 and <= 1 ? Math.Max(1, (int)Math.Round(q * Math.Min(outFeatures, inFeatures))) : throw new ArgumentException($"exclusive ratio must be in (0, 1], got {q}");
        return expertRank;
    }
}

/// <summary>
/// Twin-Merging (Lu et al., NeurIPS 2024): a shared model θ_s (any merge of the experts; task arithmetic with
/// λ = 0.3 by default) holds what the experts have in common; expert k's exclusive knowledge is its update minus the
/// shared one, ΔWₖ − (θ_s − θ0), compressed by truncated SVD. At inference every input gets
/// θ_s + Σₖ softmax(router)ₖ · exclusiveₖ, which Amalgam computes in factored form: the shared update folded into
/// the model's weights once, the exclusive parts installed as an <see cref="Mixing.ExpertLibrary"/>.
/// </summary>
public static class TwinMerging
{
    /// <summary>
    /// The exclusive part of every expert as a LoRA adapter (scale 1, lora_alpha = r) fitting <paramref name="shared"/>:
    /// per module the best rank-r approximation (Eckart–Young) of sₖ·Bₖ·Aₖ − (W_shared − W_base).
    /// </summary>
    public static IReadOnlyList<LoraAdapter> Exclusive(CausalLM baseModel, CausalLM shared, IReadOnlyList<LoraAdapter> experts,
        TwinMergingOptions? options = null)
    {
        options ??= new();
        foreach (var expert in experts) expert.RequirePlainLora("by Twin-Merging (its exclusive parts are s·B·A minus the shared update)");
        // The experts' SVDs are independent: side by side on the workers; each factor leaves its worker's scope unowned.
        return Runtime.TorchWorkers.Map(experts, expert =>
        {
            var factors = new Dictionary<string, (Tensor A, Tensor B)>(StringComparer.Ordinal);
            var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var (module, delta) in expert.Deltas)
            {
                using var scope = NewDisposeScope();
                var sharedDelta = shared.Linears[module].Weight.to(ScalarType.Float32) - baseModel.Linears[module].Weight.to(ScalarType.Float32);
                int rank = options.RankFor(delta.B.shape[0], delta.A.shape[1], (int)delta.Rank);
                var (a, b) = LowRankFactorization.Truncate(delta.Dense() - sharedDelta, rank);
                factors[module] = (a.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope());
                ranks[module] = rank;
            }
            int r = ranks.Values.GroupBy(x => x).MaxBy(g => g.Count())!.Key;
            var odd = ranks.Where(kv => kv.Value != r).ToDictionary(kv => System.Text.RegularExpressions.Regex.Escape(kv.Key), kv => kv.Value);
            var config = new LoraConfig
            {
                R = r,
                LoraAlpha = r,
                TargetModules = JsonSerializer.SerializeToElement(expert.Deltas.Keys.Order(StringComparer.Ordinal).ToList()),
                RankPattern = odd,
                AlphaPattern = odd.ToDictionary(kv => kv.Key, kv => (double)kv.Value),
                Source = $"{expert.Name} (Twin-Merging exclusive part)",
            };
            return new LoraAdapter(expert.Name, config, factors);
        });
    }
}
