namespace Amalgam.Selection;

/// <summary>How well two clusterings of the same points agree, whatever their label names.</summary>
public static class ClusterAgreement
{
    /// <summary>
    /// The adjusted Rand index (Hubert &amp; Arabie 1985): 1 for identical partitions, about 0 for independent ones.
    /// Two partitions that are both a single cluster (or both all singletons) count as identical (1).
    /// </summary>
    public static double AdjustedRand(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        if (a.Count != b.Count) throw new ArgumentException($"adjusted Rand: {a.Count} labels against {b.Count}");
        if (a.Count < 2) return 1;
        var pairs = new Dictionary<(int, int), long>();
        var rows = new Dictionary<int, long>();
        var cols = new Dictionary<int, long>();
        for (int i = 0; i < a.Count; i++)
        {
            pairs[(a[i], b[i])] = pairs.GetValueOrDefault((a[i], b[i])) + 1;
            rows[a[i]] = rows.GetValueOrDefault(a[i]) + 1;
            cols[b[i]] = cols.GetValueOrDefault(b[i]) + 1;
        }
        static double Choose2(long m) => m * (m - 1) / 2.0;
        double index = pairs.Values.Sum(Choose2), sumA = rows.Values.Sum(Choose2), sumB = cols.Values.Sum(Choose2);
        double expected = sumA * sumB / Choose2(a.Count), max = (sumA + sumB) / 2;
        if (max == expected) return 1; // degenerate partitions: equal exactly when the index is at its maximum
        return (index - expected) / (max - expected);
    }
}
