using Amalgam.Selection;
using static TorchSharp.torch;

namespace Amalgam.Tests.Selection;

public class KMeansTests
{
    /// <summary>n points around <paramref name="clusters"/> well-separated centres in d dimensions, and their true labels.</summary>
    static (double[][] Points, int[] Truth) Planted(int clusters, int perCluster, int d, int seed, double spread = 0.3)
    {
        var rng = new Random(seed);
        var centres = Enumerable.Range(0, clusters).Select(_ => Enumerable.Range(0, d).Select(_ => rng.NextDouble() * 20 - 10).ToArray()).ToArray();
        var points = new List<double[]>();
        var truth = new List<int>();
        for (int i = 0; i < clusters * perCluster; i++)
        {
            int c = (i * 7) % clusters; // interleaved, so labels are not in index order
            points.Add(centres[c].Select(v => v + spread * (rng.NextDouble() * 2 - 1)).ToArray());
            truth.Add(c);
        }
        return (points.ToArray(), truth.ToArray());
    }

    [Fact]
    public void Recovers_planted_clusters_exactly_for_many_seeds()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var (points, truth) = Planted(clusters: 4, perCluster: 10, d: 5, seed: 100 + seed);
            var result = KMeans.Fit(points, 4, seed, KMeansDistance.Euclidean);
            Assert.Equal(1.0, ClusterAgreement.AdjustedRand(result.Assignments, truth), 12);
            Assert.Equal(0, result.Assignments[0]); // labels numbered by first appearance
            Assert.Equal(4, result.Centroids.Length);
        }
    }

    [Fact]
    public void Cosine_clusters_by_direction_where_euclidean_clusters_by_magnitude()
    {
        // Two directions (near x and near y), each at two very different lengths.
        double[][] points = [[1, 0.1], [1, -0.1], [100, 10], [100, -10], [0.1, 1], [-0.1, 1], [10, 100], [-10, 100]];
        int[] direction = [0, 0, 0, 0, 1, 1, 1, 1];
        for (int seed = 0; seed < 10; seed++)
        {
            var cosine = KMeans.Fit(points, 2, seed, KMeansDistance.Cosine);
            Assert.Equal(1.0, ClusterAgreement.AdjustedRand(cosine.Assignments, direction), 12);
            foreach (var c in cosine.Centroids) Assert.Equal(1.0, Math.Sqrt(c.Sum(v => v * v)), 12);
            // inertia = Σ (1 − cos): each point is 0.1 rad-ish off its cluster's axis, centroids on the axes
            double expected = points.Select((p, i) => 1 - Math.Abs(p[direction[i]]) / Math.Sqrt(p[0] * p[0] + p[1] * p[1])).Sum();
            Assert.Equal(expected, cosine.Inertia, 9);
            var euclidean = KMeans.Fit(points, 2, seed, KMeansDistance.Euclidean);
            Assert.True(ClusterAgreement.AdjustedRand(euclidean.Assignments, direction) < 0.5);
        }
    }

    [Fact]
    public void The_same_seed_gives_the_same_clustering()
    {
        var (points, _) = Planted(clusters: 5, perCluster: 6, d: 3, seed: 7, spread: 8); // overlapping: local optima differ
        for (int seed = 0; seed < 5; seed++)
        {
            var a = KMeans.Fit(points, 5, seed, KMeansDistance.Euclidean, restarts: 1);
            var b = KMeans.Fit(points, 5, seed, KMeansDistance.Euclidean, restarts: 1);
            Assert.Equal(a.Assignments, b.Assignments);
            Assert.Equal(a.Inertia, b.Inertia);
            for (int c = 0; c < 5; c++) Assert.Equal(a.Centroids[c], b.Centroids[c]);
        }
        // More restarts never end worse than the first restart alone (it is one of them).
        for (int seed = 0; seed < 5; seed++)
            Assert.True(KMeans.Fit(points, 5, seed, KMeansDistance.Euclidean, restarts: 10).Inertia <= KMeans.Fit(points, 5, seed, KMeansDistance.Euclidean, restarts: 1).Inertia + 1e-9);
    }

    [Fact]
    public void K_equal_to_n_puts_every_point_alone_and_k_above_n_is_refused()
    {
        double[][] points = [[0, 1], [5, 2], [-3, 3]];
        var result = KMeans.Fit(points, 3, 0, KMeansDistance.Euclidean);
        Assert.Equal([0, 1, 2], result.Assignments);
        Assert.Equal(0, result.Inertia);
        var e = Assert.Throws<ArgumentException>(() => KMeans.Fit(points, 4, 0));
        Assert.Contains("k = 4 exceeds the number of points (3)", e.Message);
        Assert.Throws<ArgumentException>(() => KMeans.Fit(points, 0, 0));
        Assert.Throws<ArgumentException>(() => KMeans.Fit([[1.0, 2], [1.0]], 1, 0));
        Assert.Throws<ArgumentException>(() => KMeans.Fit([[double.NaN, 2]], 1, 0));
    }

    [Fact]
    public void Duplicates_are_clustered_together_and_no_cluster_is_left_empty()
    {
        double[][] points = [[1, 0], [0, 1], [1, 0], [-1, -1], [0, 1], [-1, -1]];
        for (int seed = 0; seed < 10; seed++)
        {
            var result = KMeans.Fit(points, 3, seed, KMeansDistance.Euclidean);
            Assert.Equal([0, 1, 0, 2, 1, 2], result.Assignments);
            Assert.Equal(0, result.Inertia);
        }
        double[][] same = [[2, 2], [2, 2], [2, 2], [2, 2]];
        for (int seed = 0; seed < 10; seed++)
        {
            var result = KMeans.Fit(same, 3, seed, KMeansDistance.Cosine);
            Assert.Equal(3, result.Assignments.Distinct().Count());
            Assert.Equal(0, result.Inertia, 12);
            Assert.All(result.Members(), m => Assert.NotEmpty(m));
        }
    }

    [Fact]
    public void A_tensor_of_rows_clusters_like_the_same_rows_as_doubles()
    {
        var (points, _) = Planted(clusters: 3, perCluster: 5, d: 4, seed: 3, spread: 4);
        using var t = tensor(points.SelectMany(p => p).ToArray(), new long[] { points.Length, 4 });
        var a = KMeans.Fit(t, 3, 11, KMeansDistance.Cosine);
        var b = KMeans.Fit(points, 3, 11, KMeansDistance.Cosine);
        Assert.Equal(b.Assignments, a.Assignments);
        Assert.Equal(b.Inertia, a.Inertia);
    }

    [Fact]
    public void Adjusted_rand_index_matches_hand_computed_values()
    {
        Assert.Equal(4.0 / 7, ClusterAgreement.AdjustedRand([0, 0, 1, 1], [0, 0, 1, 2]), 12);
        Assert.Equal(1.0, ClusterAgreement.AdjustedRand([0, 0, 1, 1], [5, 5, 3, 3]), 12);
        Assert.Equal(-0.5, ClusterAgreement.AdjustedRand([0, 0, 1, 1], [0, 1, 0, 1]), 12);
        Assert.Equal(1.0, ClusterAgreement.AdjustedRand([0, 0, 0], [1, 1, 1]), 12);
    }
}
