namespace Amalgam.Study;

/// <summary>One strategy's bootstrap replicates of its three quality numbers (null where the number is).</summary>
public sealed record Replicates(double[] HeldIn, double[]? GapClosed, double[]? HeldOut);

/// <summary>
/// The study's paired bootstrap over test examples. Each of <c>samples</c> resamples draws, for every task in the
/// study's task order, as many example indices as the task has scored examples, uniformly with replacement; every
/// strategy is re-scored on the same draw, so differences between strategies keep their pairing (two strategies
/// that fail on the same examples differ by less noise than either has alone). The expert and base scores (the
/// denominators of the normalised score and gap closed) are held fixed: the intervals describe how much a
/// strategy's score depends on which test examples were drawn. Intervals are percentile intervals with linear
/// interpolation between order statistics (numpy's default). The draws come from SplitMix64 seeded with the seed,
/// index = ⌊u·n⌋ with u = (x &gt;&gt; 11)·2⁻⁵³, so an independent implementation reproduces them exactly
/// (tests/Golden/study_bootstrap.py).
/// </summary>
public sealed class StudyBootstrap
{
    public const int DefaultSamples = 1000;
    public const double DefaultLevel = 0.95;

    readonly Dictionary<string, Replicates> replicates = new(StringComparer.Ordinal);

    public BootstrapSettings Settings { get; }

    StudyBootstrap(BootstrapSettings settings) => Settings = settings;

    /// <summary>The replicates of <paramref name="strategy"/>.</summary>
    public Replicates Of(string strategy) => replicates.TryGetValue(strategy, out var r) ? r
        : throw new ArgumentException($"no bootstrap replicates for strategy '{strategy}'", nameof(strategy));

    /// <summary>The bootstrap of a study whose strategies carry per-example scores; null when it has no <c>bootstrap</c> settings.</summary>
    /// <exception cref="ArgumentException">a strategy without per-example scores, or tasks scored on different numbers of examples</exception>
    public static StudyBootstrap? For(StudyResults r) => r.Bootstrap is { } b ? Compute(r, b) : null;

    public static StudyBootstrap Compute(StudyResults r, BootstrapSettings settings)
    {
        if (settings.Samples < 2) throw new ArgumentException($"bootstrap.samples: must be at least 2, got {settings.Samples}");
        if (!(settings.Level > 0 && settings.Level < 1)) throw new ArgumentException($"bootstrap.level: must be in (0, 1), got {settings.Level}");
        // Examples per task, the same for every strategy that scored the task (the pairing needs it).
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var s in r.Strategies)
        {
            if (s.PerExample is null) throw new ArgumentException($"strategies '{s.Name}'.per_example: missing (the bootstrap resamples it)");
            foreach (var (task, scores) in s.PerExample)
            {
                if (counts.TryGetValue(task, out int n) && n != scores.Length)
                    throw new ArgumentException($"strategies '{s.Name}'.per_example.{task}: {scores.Length} examples where other strategies have {n} (the bootstrap pairs them)");
                counts[task] = scores.Length;
            }
        }
        var tasks = r.Tasks.Where(t => counts.ContainsKey(t.Name)).ToList();

        // draws[b][t][i]: the i-th drawn example index of task t in resample b.
        var rng = new SplitMix64((ulong)(long)settings.Seed);
        var draws = new int[settings.Samples][][];
        for (int b = 0; b < settings.Samples; b++)
        {
            draws[b] = new int[tasks.Count][];
            for (int t = 0; t < tasks.Count; t++)
            {
                int n = counts[tasks[t].Name];
                var d = draws[b][t] = new int[n];
                for (int i = 0; i < n; i++) d[i] = rng.NextIndex(n);
            }
        }

        var boot = new StudyBootstrap(settings);
        var baseScores = r.BaseScores;
        foreach (var s in r.Strategies)
        {
            var heldIn = new double[settings.Samples];
            var gap = s.GapClosed is null ? null : new double[settings.Samples];
            var heldOut = s.HeldOut is null ? null : new double[settings.Samples];
            for (int b = 0; b < settings.Samples; b++)
            {
                var means = new Dictionary<string, double>(StringComparer.Ordinal);
                for (int t = 0; t < tasks.Count; t++)
                {
                    if (!s.PerExample!.TryGetValue(tasks[t].Name, out var x)) continue;
                    double sum = 0;
                    foreach (int i in draws[b][t]) sum += x[i];
                    means[tasks[t].Name] = sum / x.Length;
                }
                heldIn[b] = Normalization.HeldIn(means, r.Tasks, r.ExpertScores);
                if (gap is not null) gap[b] = Normalization.GapClosed(means, r.Tasks, r.ExpertScores, baseScores!)!.Value;
                if (heldOut is not null) heldOut[b] = Normalization.HeldOut(means, r.Tasks)!.Value;
            }
            boot.replicates[s.Name] = new Replicates(heldIn, gap, heldOut);
        }
        return boot;
    }

    /// <summary>The central percentile interval of <paramref name="values"/> at <see cref="BootstrapSettings.Level"/>.</summary>
    public (double Lo, double Hi) Interval(IReadOnlyList<double> values) => Percentiles(values, Settings.Level);

    /// <summary>The interval of a − b over the paired replicates.</summary>
    public (double Lo, double Hi) Difference(IReadOnlyList<double> a, IReadOnlyList<double> b) =>
        Interval(a.Select((v, i) => v - b[i]).ToArray());

    public static (double Lo, double Hi) Percentiles(IReadOnlyList<double> values, double level)
    {
        var v = values.ToArray();
        Array.Sort(v);
        double alpha = (1 - level) / 2;
        return (Quantile(v, alpha), Quantile(v, 1 - alpha));
    }

    /// <summary>numpy's default (linear) quantile of sorted values: position q·(n − 1), interpolated.</summary>
    static double Quantile(double[] sorted, double q)
    {
        double h = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>The study with every strategy's three intervals filled in from its replicates, and the settings recorded.</summary>
    public static StudyResults WithIntervals(StudyResults r, BootstrapSettings settings)
    {
        var withSettings = r with { Bootstrap = settings };
        var boot = Compute(withSettings, settings);
        return withSettings with
        {
            Strategies = r.Strategies.Select(s =>
            {
                var rep = boot.Of(s.Name);
                return s with
                {
                    HeldInInterval = Pair(boot.Interval(rep.HeldIn)),
                    GapClosedInterval = rep.GapClosed is null ? null : Pair(boot.Interval(rep.GapClosed)),
                    HeldOutInterval = rep.HeldOut is null ? null : Pair(boot.Interval(rep.HeldOut)),
                };
            }).ToList(),
        };
    }

    static double[] Pair((double Lo, double Hi) i) => [i.Lo, i.Hi];
}

/// <summary>SplitMix64 (Steele, Lea and Flood 2014): a tiny generator that any language reproduces bit for bit.</summary>
public sealed class SplitMix64(ulong seed)
{
    ulong state = seed;

    public ulong Next()
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>⌊u·n⌋ with u = (x &gt;&gt; 11)·2⁻⁵³ uniform in [0, 1).</summary>
    public int NextIndex(int n) => (int)((Next() >> 11) * (1.0 / (1UL << 53)) * n);
}
