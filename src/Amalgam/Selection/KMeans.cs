using static TorchSharp.torch;

namespace Amalgam.Selection;

/// <summary>How <see cref="KMeans"/> measures distance.</summary>
public enum KMeansDistance
{
    /// <summary>Spherical k-means: points and centroids L2-normalised, distance 1 − cos(x, c).</summary>
    Cosine,
    /// <summary>Classic k-means: squared Euclidean distance, centroids are means.</summary>
    Euclidean,
}

/// <summary>
/// A clustering: <paramref name="Assignments"/>[i] is point i's cluster, labels numbered by first appearance
/// (point 0 is in cluster 0); <paramref name="Centroids"/> are [k][d] (unit length for cosine); <paramref name="Inertia"/>
/// is Σᵢ dist(xᵢ, c(i)) in the chosen distance; <paramref name="Iterations"/> the Lloyd iterations of the kept restart.
/// </summary>
public sealed record KMeansResult(int[] Assignments, double[][] Centroids, double Inertia, int Iterations)
{
    /// <summary>The members of each cluster, ascending.</summary>
    public int[][] Members() =>
        Enumerable.Range(0, Centroids.Length).Select(c => Enumerable.Range(0, Assignments.Length).Where(i => Assignments[i] == c).ToArray()).ToArray();
}

/// <summary>
/// Lloyd's k-means with k-means++ seeding, several restarts, the lowest inertia kept. Seeded and deterministic:
/// the same points, k and seed give the same result. Every cluster is non-empty (k ≤ n): a cluster left empty
/// takes the point farthest from its centroid among clusters with more than one member.
/// </summary>
public static class KMeans
{
    public const int DefaultRestarts = 10;
    public const int DefaultMaxIterations = 300;

    public static KMeansResult Fit(Tensor points, int k, int seed, KMeansDistance distance = KMeansDistance.Cosine,
        int restarts = DefaultRestarts, int maxIterations = DefaultMaxIterations) =>
        Fit(ExpertFeatures.FromRows(points), k, seed, distance, restarts, maxIterations);

    public static KMeansResult Fit(double[][] points, int k, int seed, KMeansDistance distance = KMeansDistance.Cosine,
        int restarts = DefaultRestarts, int maxIterations = DefaultMaxIterations)
    {
        ArgumentNullException.ThrowIfNull(points);
        int n = points.Length;
        if (n == 0) throw new ArgumentException("k-means: points is empty", nameof(points));
        int d = points[0]?.Length ?? throw new ArgumentException("k-means: points[0] is null", nameof(points));
        for (int i = 0; i < n; i++)
        {
            if (points[i] is null || points[i].Length != d) throw new ArgumentException($"k-means: points[{i}] has {points[i]?.Length ?? 0} values, points[0] has {d}", nameof(points));
            if (points[i].Any(v => !double.IsFinite(v))) throw new ArgumentException($"k-means: points[{i}] has a value that is not finite", nameof(points));
        }
        if (k < 1) throw new ArgumentException($"k-means: k = {k}, must be at least 1", nameof(k));
        if (k > n) throw new ArgumentException($"k-means: k = {k} exceeds the number of points ({n})", nameof(k));
        if (restarts < 1) throw new ArgumentException($"k-means: restarts = {restarts}, must be at least 1", nameof(restarts));
        if (maxIterations < 1) throw new ArgumentException($"k-means: maxIterations = {maxIterations}, must be at least 1", nameof(maxIterations));

        // Spherical k-means is Euclidean k-means on unit vectors (|x−c|² = 2 − 2·cos) with centroids renormalised.
        var x = distance == KMeansDistance.Cosine ? points.Select(Normalised).ToArray() : points.Select(p => (double[])p.Clone()).ToArray();
        var rng = new Random(seed);
        (int[] Labels, double[][] Centroids, double Inertia, int Iterations)? best = null;
        for (int r = 0; r < restarts; r++)
        {
            var run = Lloyd(x, InitPlusPlus(x, k, rng), distance, maxIterations);
            if (best is null || run.Inertia < best.Value.Inertia - 1e-12 * Math.Max(1, Math.Abs(best.Value.Inertia))) best = run;
        }
        var (labels, centroids, inertia, iterations) = best!.Value;
        return Canonical(labels, centroids, inertia, iterations, distance);
    }

    /// <summary>k-means++: the first centre uniformly, each next one with probability ∝ squared distance to the nearest chosen.</summary>
    static double[][] InitPlusPlus(double[][] x, int k, Random rng)
    {
        int n = x.Length;
        var chosen = new List<int> { rng.Next(n) };
        var nearest = x.Select(p => SquaredDistance(p, x[chosen[0]])).ToArray();
        while (chosen.Count < k)
        {
            double total = nearest.Sum();
            int next;
            if (total <= 0)
            {   // only duplicates of chosen centres left: pick uniformly among the points not chosen yet
                var rest = Enumerable.Range(0, n).Except(chosen).ToList();
                next = rest[rng.Next(rest.Count)];
            }
            else
            {
                double u = rng.NextDouble() * total, acc = 0;
                next = -1;
                for (int i = 0; i < n; i++)
                {
                    if (nearest[i] <= 0) continue;
                    acc += nearest[i];
                    next = i;
                    if (acc > u) break;
                }
            }
            chosen.Add(next);
            for (int i = 0; i < n; i++) nearest[i] = Math.Min(nearest[i], SquaredDistance(x[i], x[next]));
        }
        return chosen.Select(i => (double[])x[i].Clone()).ToArray();
    }

    static (int[] Labels, double[][] Centroids, double Inertia, int Iterations) Lloyd(double[][] x, double[][] centroids, KMeansDistance distance, int maxIterations)
    {
        int n = x.Length, k = centroids.Length, d = x[0].Length;
        var labels = Enumerable.Repeat(-1, n).ToArray();
        int iteration = 0;
        while (iteration < maxIterations)
        {
            iteration++;
            bool changed = false;
            for (int i = 0; i < n; i++)
            {
                int c = Nearest(x[i], centroids);
                // keep the current cluster on a tie, or duplicates could swap back and forth for ever
                if (labels[i] >= 0 && SquaredDistance(x[i], centroids[labels[i]]) <= SquaredDistance(x[i], centroids[c])) continue;
                if (c != labels[i]) { labels[i] = c; changed = true; }
            }
            changed |= FillEmptyClusters(x, labels, centroids);
            if (!changed && iteration > 1) break;
            for (int c = 0; c < k; c++)
            {
                var mean = new double[d];
                int count = 0;
                for (int i = 0; i < n; i++)
                {
                    if (labels[i] != c) continue;
                    count++;
                    for (int j = 0; j < d; j++) mean[j] += x[i][j];
                }
                for (int j = 0; j < d; j++) mean[j] /= count;
                centroids[c] = distance == KMeansDistance.Cosine ? Normalised(mean) : mean;
            }
        }
        double inertia = 0;
        for (int i = 0; i < n; i++) inertia += Distance(x[i], centroids[labels[i]], distance);
        return (labels, centroids, inertia, iteration);
    }

    /// <summary>Moves, into each empty cluster, the point farthest from its own centroid among clusters of two or more.</summary>
    static bool FillEmptyClusters(double[][] x, int[] labels, double[][] centroids)
    {
        bool changed = false;
        for (int c = 0; c < centroids.Length; c++)
        {
            if (labels.Contains(c)) continue;
            var sizes = new int[centroids.Length];
            foreach (int l in labels) sizes[l]++;
            int far = -1;
            double farthest = -1;
            for (int i = 0; i < x.Length; i++)
            {
                if (sizes[labels[i]] < 2) continue;
                double dist = SquaredDistance(x[i], centroids[labels[i]]);
                if (dist > farthest) { farthest = dist; far = i; }
            }
            labels[far] = c;
            centroids[c] = (double[])x[far].Clone();
            changed = true;
        }
        return changed;
    }

    static KMeansResult Canonical(int[] labels, double[][] centroids, double inertia, int iterations, KMeansDistance distance)
    {
        var order = new Dictionary<int, int>();
        foreach (int l in labels) if (!order.ContainsKey(l)) order[l] = order.Count;
        var relabelled = labels.Select(l => order[l]).ToArray();
        var sorted = new double[centroids.Length][];
        foreach (var (old, now) in order) sorted[now] = centroids[old];
        return new KMeansResult(relabelled, sorted, inertia, iterations);
    }

    static int Nearest(double[] p, double[][] centroids)
    {
        int best = 0;
        double bestDistance = double.PositiveInfinity;
        for (int c = 0; c < centroids.Length; c++)
        {
            double dist = SquaredDistance(p, centroids[c]);
            if (dist < bestDistance) { bestDistance = dist; best = c; }
        }
        return best;
    }

    static double Distance(double[] p, double[] c, KMeansDistance distance)
    {
        if (distance == KMeansDistance.Euclidean) return SquaredDistance(p, c);
        double dot = 0;
        for (int j = 0; j < p.Length; j++) dot += p[j] * c[j];
        return 1 - dot; // both unit (or p zero: distance 1 to every centroid)
    }

    internal static double SquaredDistance(double[] a, double[] b)
    {
        double s = 0;
        for (int j = 0; j < a.Length; j++) { double t = a[j] - b[j]; s += t * t; }
        return s;
    }

    /// <summary>x / |x|; a zero vector stays zero (it has no direction, and sits at cosine distance 1 from everything).</summary>
    internal static double[] Normalised(double[] v)
    {
        double norm = Math.Sqrt(v.Sum(t => t * t));
        return norm > 0 ? v.Select(t => t / norm).ToArray() : (double[])v.Clone();
    }
}
