namespace Amalgam.Fitting;

/// <summary>
/// Settings for <see cref="LoraHubSearch"/>, defaults as LoraHub (Huang et al. 2023): weights start at
/// <paramref name="Init"/> (0), stay in [<paramref name="Lower"/>, <paramref name="Upper"/>] = [−1.5, 1.5], the loss is
/// penalised by <paramref name="L1"/>·mean|w| (LoraHub's code divides the L1 sum by the number of experts), and the
/// search spends <paramref name="Budget"/> loss evaluations (LoraHub's default max_inference_step is 40), the start
/// included. <paramref name="InitialStep"/> is the mutation scale σ₀ (default (Upper − Lower)/6 = 0.5).
/// </summary>
public sealed record LoraHubOptions(double Lower = -1.5, double Upper = 1.5, double L1 = 0.05, int Budget = 40, int Seed = 0,
    double Init = 0, double? InitialStep = null)
{
    internal void Validate()
    {
        if (!double.IsFinite(Lower) || !double.IsFinite(Upper) || !(Lower < Upper)) throw new ArgumentException($"LoraHub search: bounds [{Lower}, {Upper}] must be finite with Lower < Upper");
        if (!(L1 >= 0) || !double.IsFinite(L1)) throw new ArgumentException($"LoraHub search: L1 = {L1}, must be ≥ 0");
        if (Budget < 1) throw new ArgumentException($"LoraHub search: Budget = {Budget}, must be at least 1");
        if (!(Init >= Lower && Init <= Upper)) throw new ArgumentException($"LoraHub search: Init = {Init} is outside [{Lower}, {Upper}]");
        if (InitialStep is { } s && !(s > 0 && double.IsFinite(s))) throw new ArgumentException($"LoraHub search: InitialStep = {s}, must be positive");
    }
}

/// <summary>One loss evaluation: the candidate, its loss, the penalised loss, whether it became the incumbent, and σ after it.</summary>
public sealed record LoraHubEvaluation(int Index, double[] Weights, double Loss, double PenalisedLoss, bool Accepted, double Step);

/// <summary>The best weights found, their penalised and raw loss, and every evaluation in order.</summary>
public sealed record LoraHubResult(double[] Weights, double PenalisedLoss, double Loss, IReadOnlyList<LoraHubEvaluation> Trace);

/// <summary>
/// LoraHub's gradient-free weight search: minimise loss(w) + L1·mean|w| over the box [Lower, Upper]^K with a
/// (1+1) evolution strategy and the one-fifth success rule: one Gaussian mutation w' = w + σ·z per evaluation
/// (z over all coordinates, or, every other step on average, over one random coordinate),
/// w' kept if it is no worse, σ doubled after an improvement and multiplied by 2^(−1/4) after a failure (so σ is
/// stable at a 1/5 success rate; the rule Nevergrad's OnePlusOne uses). Mutations leaving the box are clipped to
/// it, so a coordinate whose optimum is on a bound can sit exactly there while the others keep moving (mirroring
/// would make every step off the bound pay, and the success rule would then shrink σ until the search stalls).
/// The one-coordinate steps serve the same case: when some coordinates sit on their bounds, a step moving all of
/// them rarely improves, while a step moving one free coordinate improves half the time. Why (1+1)-ES rather than CMA-ES: the budget is tiny (~40 evaluations) and every evaluation is a
/// pass over the examples; CMA-ES would spend it on 3–4 generations of a population before its covariance learns
/// anything, while the (1+1)-ES moves after every evaluation. Deterministic per seed.
/// </summary>
public static class LoraHubSearch
{
    public static LoraHubResult Minimize(Func<double[], double> loss, int dimensions, LoraHubOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(loss);
        if (dimensions < 1) throw new ArgumentException($"LoraHub search: dimensions = {dimensions}, must be at least 1", nameof(dimensions));
        options ??= new LoraHubOptions();
        options.Validate();
        var rng = new Random(options.Seed);
        double range = options.Upper - options.Lower;
        double sigma = options.InitialStep ?? range / 6;
        double minSigma = 1e-8 * range, maxSigma = range;
        var trace = new List<LoraHubEvaluation>(options.Budget);

        (double Raw, double Penalised) Evaluate(double[] w)
        {
            double raw = loss((double[])w.Clone());
            if (double.IsNaN(raw)) throw new InvalidOperationException($"LoraHub search: the loss is NaN at [{string.Join(", ", w)}]");
            return (raw, raw + options.L1 * w.Sum(Math.Abs) / w.Length);
        }

        var current = Enumerable.Repeat(options.Init, dimensions).ToArray();
        var (currentRaw, currentScore) = Evaluate(current);
        trace.Add(new LoraHubEvaluation(0, (double[])current.Clone(), currentRaw, currentScore, true, sigma));
        for (int i = 1; i < options.Budget; i++)
        {
            var candidate = (double[])current.Clone();
            int only = dimensions > 1 && rng.NextDouble() < 0.5 ? rng.Next(dimensions) : -1; // half the steps move one coordinate
            for (int j = 0; j < dimensions; j++)
                if (only < 0 || j == only) candidate[j] = Math.Clamp(current[j] + sigma * Gaussian(rng), options.Lower, options.Upper);
            var (raw, score) = Evaluate(candidate);
            bool improved = score < currentScore;
            bool accepted = score <= currentScore; // ties move too: drift across plateaus
            sigma = Math.Clamp(improved ? sigma * 2 : sigma * Math.Pow(2, -0.25), minSigma, maxSigma);
            if (accepted) { current = candidate; currentRaw = raw; currentScore = score; }
            trace.Add(new LoraHubEvaluation(i, candidate, raw, score, accepted, sigma));
        }
        return new LoraHubResult(current, currentScore, currentRaw, trace);
    }

    static double Gaussian(Random rng)
    {
        double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble(); // u1 in (0, 1]: log is finite
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
