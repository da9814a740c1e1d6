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
/// <param name="TaskArithmeticLambda">λ of Twin-Merging's shared model, and task arithmetic's tie-break within its grid</param>
/// <param name="Density">DARE-TIES's tie-break density within its grid</param>
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
    /// <summary>Task arithmetic's λ grid (Ilharco et al. sweep 0.1–1.0), chosen on validation.</summary>
    public IReadOnlyList<double> TaskArithmeticGrid { get; init; } = [0.1, 0.3, 0.5, 0.7, 1.0];
    /// <summary>TIES's trim: keep the top 20 % by magnitude (the TIES paper's k = 20).</summary>
    public double TiesDensity { get; init; } = 0.2;
    /// <summary>TIES's λ grid (the paper sweeps 0.8–2.5 on validation).</summary>
    public IReadOnlyList<double> TiesLambdaGrid { get; init; } = [0.8, 1.0, 1.5, 2.0, 2.5];
    /// <summary>DARE-TIES's keep-fraction grid.</summary>
    public IReadOnlyList<double> DareDensityGrid { get; init; } = [0.2, 0.5];
    /// <summary>DARE-TIES's λ grid.</summary>
    public IReadOnlyList<double> DareLambdaGrid { get; init; } = [0.8, 1.0, 1.5, 2.0];

    /// <summary>A fast configuration for tests and smoke runs.</summary>
    public static StrategyOptions Quick { get; } = new(RouterExamplesPerTask: 24, FitExamplesPerTask: 4, MergeFitExamplesPerTask: 2, SelectionExamplesPerTask: 6, FitSteps: 8);
}
