using System.Text.Json.Nodes;
using Amalgam.Predictors;
using Amalgam.Routing;

namespace Amalgam.Strategies.Saved;

/// <summary>
/// Arrow routing over the pool's experts, training-free: its prototypes are recomputed from the experts on load
/// (deterministic), so the folder holds only top-k and the temperature.
/// </summary>
/// <param name="shared">prototypes already built from the same experts (not owned), e.g. the study's</param>
public sealed class ArrowStrategy(int topK, double temperature, ArrowPrototypes? shared = null) : DeployableStrategy
{
    private ArrowPrototypes? prototypes = shared;

    public override string Kind => StrategyKinds.Arrow;
    public int TopK => topK;
    public double Temperature => temperature;

    public override IPredictor Predictor(ExpertPool pool) => new MixturePredictor(pool.Model, new ArrowRouting(Prototypes(pool), topK, temperature));

    /// <summary>The prototypes of <paramref name="pool"/>'s experts (built once).</summary>
    public ArrowPrototypes Prototypes(ExpertPool pool) => prototypes ??= ArrowPrototypes.Build(pool.Experts);

    public override JsonObject Save(string dir, ExpertPool pool) => new() { ["top_k"] = topK, ["temperature"] = temperature };

    public static ArrowStrategy Load(SavedParameters p) => new(p.Int("top_k", min: 1), p.Double("temperature"));

    public override void Dispose()
    {
        if (shared is null) prototypes?.Dispose();
    }
}
