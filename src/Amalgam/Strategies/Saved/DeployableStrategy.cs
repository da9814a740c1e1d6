using System.Text.Json.Nodes;
using Amalgam.Predictors;

namespace Amalgam.Strategies.Saved;

/// <summary>
/// A fitted strategy as a value: its kind, its fitted parts (routers, merged weights, exclusive experts, weights) and
/// hyperparameters, able to answer with an <see cref="ExpertPool"/> (the base and the experts it was fitted on) and to
/// be saved as a strategy folder (<see cref="StrategyFolder"/>) and loaded again without any suite. The study
/// evaluates exactly what it saves: its predictor comes from this value, not from the fitting code.
/// </summary>
public abstract class DeployableStrategy : IDisposable
{
    /// <summary>The <c>kind</c> written in strategy.json (one of <see cref="StrategyKinds"/>).</summary>
    public abstract string Kind { get; }

    public string Name { get; set; } = "";
    public string Family { get; set; } = "";
    public string? Variant { get; set; }
    public string Description { get; set; } = "";

    /// <summary>Whether answering needs the pool's experts (a folded merge needs only its own weights).</summary>
    public virtual bool UsesExperts => true;

    /// <summary>
    /// What this strategy computes: two strategies with equal keys give the same answers on every input, so the study
    /// scores one and reuses its evaluation for the other (null: unknown, never shared).
    /// </summary>
    public virtual string? AnswersKey => null;

    /// <summary>
    /// How it computes: equal keys run the same ops on tensors of the same shapes (only the values differ), so one
    /// tokens/s measurement stands for both (null: measure it).
    /// </summary>
    public virtual string? ThroughputKey => null;

    /// <summary>Answers with <paramref name="pool"/>, whose experts are the ones this strategy was fitted on, in order.</summary>
    public abstract IPredictor Predictor(ExpertPool pool);

    /// <summary>Writes the kind's files into <paramref name="dir"/> (a staging folder) and returns its parameters for strategy.json.</summary>
    public abstract JsonObject Save(string dir, ExpertPool pool);

    public virtual void Dispose() { }
}

/// <summary>The kinds a strategy folder may hold.</summary>
public static class StrategyKinds
{
    public const string MergedModel = "merged-model", Ensemble = "ensemble", Router = "router", Arrow = "arrow", TwinMerging = "twin-merging";
    public static IReadOnlyList<string> All { get; } = [MergedModel, Ensemble, Router, Arrow, TwinMerging];
}
