using Amalgam.Ensembling;

namespace Amalgam.Serving;

/// <summary>How a request's expert rows are combined: in weight space (one row) or in output space (one row per expert).</summary>
public enum ExpertAggregation
{
    /// <summary>One batch row whose layers add Σₖ wₖ·ΔWₖ·x (the factored per-row mixture).</summary>
    Parameters,
    /// <summary>One batch row per entry of <see cref="ExpertPlan.Rows"/>; their next-token distributions are combined.</summary>
    Outputs,
}

/// <summary>
/// Which experts answer one request, with which weights: for <see cref="ExpertAggregation.Parameters"/> exactly one
/// row of adapter weights (empty = the base alone); for <see cref="ExpertAggregation.Outputs"/> one row per member
/// and the weights that combine the members' distributions.
/// </summary>
public sealed record ExpertPlan(IReadOnlyList<IReadOnlyDictionary<string, double>> Rows, ExpertAggregation Aggregation,
    IReadOnlyList<double>? OutputWeights = null, EnsembleAggregation Combine = EnsembleAggregation.Probabilities)
{
    public static readonly ExpertPlan Base = new([new Dictionary<string, double>()], ExpertAggregation.Parameters);

    public static ExpertPlan Mixture(IReadOnlyDictionary<string, double> weights) => new([weights], ExpertAggregation.Parameters);

    /// <summary>The adapters any row reads.</summary>
    public IEnumerable<string> Experts => Rows.SelectMany(r => r.Where(w => w.Value != 0).Select(w => w.Key)).Distinct();

    public void Validate()
    {
        if (Rows.Count == 0) throw new ArgumentException("an expert plan needs at least one row");
        if (Aggregation == ExpertAggregation.Parameters && Rows.Count != 1) throw new ArgumentException("a parameter-space plan has exactly one row");
        if (Aggregation == ExpertAggregation.Outputs && (OutputWeights is null || OutputWeights.Count != Rows.Count))
            throw new ArgumentException("an output-space plan needs one output weight per row");
    }
}

/// <summary>
/// What a request's <c>model</c> names: given the prompt ids, which experts answer with which weights, and whether
/// they are aggregated by parameters or by outputs. <see cref="Plan"/> runs on the engine thread (a router may run
/// the base model on the prompt), once per request, before its prefill.
/// </summary>
public interface IServedModel
{
    /// <summary>The name clients use.</summary>
    string Id { get; }

    /// <summary>base, adapter, mix or strategy (shown by /v1/models).</summary>
    string Kind { get; }

    /// <summary>Batch rows one request takes (the plan's row count; known before planning, for admission).</summary>
    int RowsPerRequest { get; }

    ExpertPlan Plan(IReadOnlyList<long> prompt);

    /// <summary>The engine that answers (null: the base model's); a folded merge or Twin-Merging has its own base weights.</summary>
    Engine.ServingEngine? Engine => null;
}

/// <summary>The base model alone.</summary>
public sealed class BaseServedModel(string id) : IServedModel
{
    public string Id => id;
    public string Kind => "base";
    public int RowsPerRequest => 1;
    public ExpertPlan Plan(IReadOnlyList<long> prompt) => ExpertPlan.Base;
}

/// <summary>
/// Fixed adapter weights for every prompt: one adapter (weight 1), or the <c>adapters</c> request field
/// <c>{"name": weight, ...}</c> mixing several exactly in ΔW space: W·x + Σₖ wₖ·sₖ·Bₖ·Aₖ·x.
/// </summary>
public sealed class FixedMixServedModel(string id, string kind, IReadOnlyDictionary<string, double> weights) : IServedModel
{
    public string Id => id;
    public string Kind => kind;
    public int RowsPerRequest => 1;
    public IReadOnlyDictionary<string, double> Weights => weights;
    public ExpertPlan Plan(IReadOnlyList<long> prompt) => ExpertPlan.Mixture(weights);
}
