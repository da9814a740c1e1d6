namespace Amalgam.Strategies;

/// <summary>
/// Settings shared by every fitted strategy. Everything is fitted on the held-in tasks' validation splits only.
/// </summary>
/// <param name="RouterExamplesPerTask">validation examples per task that routers are trained on and centroids averaged over</param>
/// <param name="FitExamplesPerTask">validation examples per task for fitted ensemble weights (expert outputs computed once)</param>
/// <param name="MergeFitExamplesPerTask">validation examples per task for fitted merge coefficients (each step runs the model forward and backward)</param>
/// <param name="SelectionExamplesPerTask">validation examples per task that greedy selection scores subsets on</param>
/// <param name="FitSteps">gradient steps of a merge-coefficient fit (ensemble weights take 4× as many: each costs no forward)</param>
/// <param name="FitLearningRate">Adam learning rate on the softmax logits of a simplex fit</param>
/// <param name="TaskArithmeticLambda">λ of task arithmetic, and of Twin-Merging's shared model</param>
/// <param name="Density">density of TIES and DARE-TIES</param>
/// <param name="RoutingTolerance">how far below the full library's routed score a greedy routing subset may stay</param>
/// <param name="Seed">seeds routers, k-means and DARE</param>
public sealed record StrategyOptions(
    int RouterExamplesPerTask = 100,
    int FitExamplesPerTask = 16,
    int MergeFitExamplesPerTask = 4,
    int SelectionExamplesPerTask = 10,
    int FitSteps = 40,
    double FitLearningRate = 0.1,
    double TaskArithmeticLambda = 0.3,
    double Density = 0.5,
    double RoutingTolerance = 0.02,
    int Seed = 0)
{
    /// <summary>A fast configuration for tests and smoke runs.</summary>
    public static StrategyOptions Quick { get; } = new(RouterExamplesPerTask: 24, FitExamplesPerTask: 4, MergeFitExamplesPerTask: 2, SelectionExamplesPerTask: 6, FitSteps: 8);
}
