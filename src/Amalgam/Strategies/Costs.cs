using Amalgam.Evaluation;

namespace Amalgam.Strategies;

/// <summary>Stored-parameter counts of a suite's pieces, from the config's shapes and the experts' ranks.</summary>
internal static class Costs
{
    public static long Base(ExpertSuite s) => FlopCounter.Parameters(s.Model.Config);

    public static long Expert(ExpertSuite s, int k) => Adapter(s.Experts[k]);

    /// <summary>An adapter's factors: r·(in + out) per module.</summary>
    public static long Adapter(Experts.LoraAdapter a) => a.Deltas.Values.Sum(d => d.Rank * (d.A.shape[1] + d.B.shape[0]));

    public static long Experts(ExpertSuite s, IEnumerable<int>? which = null) =>
        (which ?? Enumerable.Range(0, s.Count)).Sum(k => Expert(s, k));

    /// <summary>The learned router's MLP weights and biases.</summary>
    public static long Mlp(IReadOnlyList<int> sizes) => sizes.Zip(sizes.Skip(1), (a, b) => (long)a * b + b).Sum();
}
