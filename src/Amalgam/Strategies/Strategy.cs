using Amalgam.Strategies.Saved;
using Amalgam.Evaluation;
using System.Text.Json.Nodes;
using Amalgam.Evaluation.Suites;
using Amalgam.Predictors;

namespace Amalgam.Strategies;

/// <summary>
/// One way of combining a suite's experts, ready to evaluate: how it answers each task (null: not scored on that
/// task, e.g. the per-task expert oracle on held-out tasks), its cost counted from shapes and ranks, what it stores,
/// what fitting it took, and the fitted values (weights, router, clusters) as details. Disposing it frees whatever
/// it loaded (merged models, exclusive experts, routers).
/// </summary>
public sealed class Strategy : IDisposable
{
    public required string Name { get; init; }
    /// <summary>One of <see cref="StrategyFamily"/>.</summary>
    public required string Family { get; init; }
    public string? Variant { get; init; }
    public string Description { get; init; } = "";
    /// <summary>False for references that are not one deployable system (the per-task expert oracle).</summary>
    public bool Deployable { get; init; } = true;
    public required Func<TaskDefinition, IPredictor?> PredictorFor { get; init; }
    /// <summary>FLOPs per example under the study's cost model.</summary>
    public required Func<CostModel, double> Flops { get; init; }
    /// <summary>Parameters that must be stored and served (base included).</summary>
    public required long StoredParameters { get; init; }
    public double FitSeconds { get; init; }
    public JsonObject? Details { get; init; }
    public List<IDisposable> Owned { get; init; } = [];
    /// <summary>Equal keys give the same answers on every input (<see cref="Saved.DeployableStrategy.AnswersKey"/>); null: never shared.</summary>
    public string? AnswersKey { get; init; }
    /// <summary>Equal keys run the same computation shapes (<see cref="Saved.DeployableStrategy.ThroughputKey"/>); null: measured alone.</summary>
    public string? ThroughputKey { get; init; }

    /// <summary>The strategy as a value that can be saved as a folder and loaded again (null for references).</summary>
    public Saved.DeployableStrategy? Saved { get; private init; }

    /// <summary>
    /// A deployable strategy answering through <paramref name="saved"/> on <paramref name="pool"/> on every task, so that
    /// what the study evaluates is exactly what it saves. Name, family, variant and description are copied onto it.
    /// </summary>
    public static Strategy Deployed(Saved.DeployableStrategy saved, ExpertPool pool, string name, string family, string? variant,
        string description, Func<CostModel, double> flops, long storedParameters, double fitSeconds, JsonObject? details, params IDisposable[] owned)
    {
        saved.Name = name;
        saved.Family = family;
        saved.Variant = variant;
        saved.Description = description;
        var predictor = saved.Predictor(pool);
        return new Strategy
        {
            Name = name, Family = family, Variant = variant, Description = description,
            PredictorFor = _ => predictor, Flops = flops, StoredParameters = storedParameters, FitSeconds = fitSeconds,
            Details = details, Saved = saved, Owned = [.. owned, saved], AnswersKey = saved.AnswersKey, ThroughputKey = saved.ThroughputKey,
        };
    }

    /// <summary>The same strategy (sharing what it owns: dispose only one of the two) with <see cref="FitSeconds"/> replaced.</summary>
    internal Strategy WithFitSeconds(double seconds) => new()
    {
        Name = Name, Family = Family, Variant = Variant, Description = Description, Deployable = Deployable, PredictorFor = PredictorFor,
        Flops = Flops, StoredParameters = StoredParameters, FitSeconds = seconds, Details = Details, Owned = Owned, Saved = Saved,
        AnswersKey = AnswersKey, ThroughputKey = ThroughputKey,
    };

    public void Dispose()
    {
        foreach (var d in Owned) d.Dispose();
        Owned.Clear();
    }
}
