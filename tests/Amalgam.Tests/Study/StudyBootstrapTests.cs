using System.Text.Json.Nodes;
using Amalgam.Strategies;
using Amalgam.Study;

namespace Amalgam.Tests.Study;

/// <summary>The paired bootstrap: an independent Python implementation's intervals, coverage, pairing, and results.json checks.</summary>
public class StudyBootstrapTests
{
    static readonly JsonObject Golden = JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.RepoRoot, "tests", "Golden", "study", "bootstrap_golden.json")))!.AsObject();

    static StudyResults GoldenStudy()
    {
        var tasks = Golden["tasks"]!.AsArray().Select(t => new StudyTask
        {
            Name = t!["name"]!.GetValue<string>(), Family = "f", HeldOut = t["held_out"]!.GetValue<bool>(), Metric = "exact_match",
        }).ToList();
        var experts = Golden["expert_scores"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>());
        var bases = Golden["base_scores"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>());
        var strategies = Golden["strategies"]!.AsArray().Select(s =>
        {
            var perExample = s!["per_example"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.AsArray().Select(v => v!.GetValue<double>()).ToArray());
            return Normalization.Fill(new StrategyResult
            {
                Name = s["name"]!.GetValue<string>(), Family = StrategyFamily.Merge, PerTask = perExample.ToDictionary(kv => kv.Key, kv => kv.Value.Average()),
                PerExample = perExample, RelativeFlops = 1, TokensPerSecond = 1,
            }, tasks, experts, bases);
        }).ToList();
        return StudyFixture.Results() with { Tasks = tasks, ExpertScores = experts, BaseScores = bases, Strategies = strategies };
    }

    static BootstrapSettings GoldenSettings => new()
    {
        Samples = Golden["samples"]!.GetValue<int>(), Seed = Golden["seed"]!.GetValue<int>(), Level = Golden["level"]!.GetValue<double>(),
    };

    static void Close(JsonNode? expected, double[]? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected!.AsArray()[0]!.GetValue<double>(), actual![0], 12);
        Assert.Equal(expected.AsArray()[1]!.GetValue<double>(), actual[1], 12);
    }

    [Fact]
    public void SplitMix64MatchesTheReferenceSequence()
    {
        var g = new SplitMix64(0);
        // 0xE220A8397B1DCDAF is SplitMix64's published first output for seed 0.
        Assert.Equal(0xE220A8397B1DCDAFUL, g.Next());
        var rest = Golden["first_draws_seed_0"]!.AsArray().Skip(1).Select(v => ulong.Parse(v!.GetValue<string>()));
        Assert.Equal(rest, new[] { g.Next(), g.Next() });
    }

    [Fact]
    public void IntervalsEqualAnIndependentImplementation()
    {
        var r = StudyBootstrap.WithIntervals(GoldenStudy(), GoldenSettings);
        foreach (var (s, g) in r.Strategies.Zip(Golden["strategies"]!.AsArray()))
        {
            Close(g!["held_in_interval"], s.HeldInInterval);
            Close(g["gap_closed_interval"], s.GapClosedInterval);
            Close(g["held_out_interval"], s.HeldOutInterval);
        }
        var boot = StudyBootstrap.For(r)!;
        var (lo, hi) = boot.Difference(boot.Of("s1").HeldIn, boot.Of("s2").HeldIn);
        Close(Golden["difference_s1_minus_s2"], [lo, hi]);
        // Saved and read back, the intervals are recomputed and agree.
        StudyResultsFile.Parse(StudyResultsFile.ToJson(r));
    }

    [Fact]
    public void PairingCancelsSharedNoiseAndIdenticalStrategiesDifferByExactlyZero()
    {
        var r = GoldenStudy();
        var twin = r.Strategies[0] with { Name = "twin" };
        r = StudyBootstrap.WithIntervals(r with { Strategies = [.. r.Strategies, twin] }, GoldenSettings);
        var boot = StudyBootstrap.For(r)!;
        Assert.Equal((0.0, 0.0), boot.Difference(boot.Of("s1").HeldIn, boot.Of("twin").HeldIn));
        Assert.Equal(r.Strategies[0].HeldInInterval, r.Strategies[^1].HeldInInterval);
        // Different seeds draw different resamples.
        var other = StudyBootstrap.WithIntervals(r, GoldenSettings with { Seed = 4 });
        Assert.NotEqual(r.Strategies[0].HeldInInterval, other.Strategies[0].HeldInInterval);
    }

    [Fact]
    public void NinetyFivePercentIntervalsCoverTheTrueMeanAboutNinetyFivePercentOfTheTime()
    {
        // One held-in task, expert 1, n = 60 Bernoulli(0.6) examples per trial; 300 trials of 400 resamples.
        var tasks = new List<StudyTask> { new() { Name = "t", Family = "f", HeldOut = false, Metric = "exact_match" } };
        var experts = new Dictionary<string, double> { ["t"] = 1.0 };
        var random = new Random(11);
        int covered = 0, trials = 300;
        for (int trial = 0; trial < trials; trial++)
        {
            var x = Enumerable.Range(0, 60).Select(_ => random.NextDouble() < 0.6 ? 1.0 : 0.0).ToArray();
            var s = Normalization.Fill(new StrategyResult
            {
                Name = "s", Family = StrategyFamily.Merge, PerTask = new() { ["t"] = x.Average() }, PerExample = new() { ["t"] = x }, RelativeFlops = 1,
            }, tasks, experts);
            var study = StudyFixture.Results() with { Tasks = tasks, ExpertScores = experts, Strategies = [s] };
            var i = StudyBootstrap.WithIntervals(study, new BootstrapSettings { Samples = 400, Seed = trial, Level = 0.95 }).Strategies[0].HeldInInterval!;
            if (i[0] <= 0.6 && 0.6 <= i[1]) covered++;
        }
        // Binomial(300, 0.95) has sd 3.8; the percentile bootstrap runs slightly narrow at n = 60: 88–99 %.
        Assert.InRange(covered / (double)trials, 0.88, 0.99);
    }

    public static TheoryData<string, string> BadFiles()
    {
        JsonObject Good() => JsonNode.Parse(StudyResultsFile.ToJson(StudyBootstrap.WithIntervals(GoldenStudy(), GoldenSettings)))!.AsObject();
        string Bad(Action<JsonObject> change) { var n = Good(); change(n); return n.ToJsonString(); }
        JsonObject S(JsonObject r, int i) => r["strategies"]![i]!.AsObject();
        return new()
        {
            { Bad(r => S(r, 0)["held_in_interval"] = new JsonArray(0.1, 0.9)), "strategies[0] 's1'.held_in_interval: [0.1, 0.9] disagrees with the bootstrap of per_example" },
            { Bad(r => S(r, 1)["gap_closed_interval"] = null), "strategies[1] 's2'.gap_closed_interval: missing (the study has a bootstrap)" },
            { Bad(r => S(r, 0)["gap_closed"] = 0.5), "strategies[0] 's1'.gap_closed: 0.5 disagrees with per_task and base_scores" },
            { Bad(r => S(r, 0)["per_example"]!["a"]![0] = 1 - S(r, 0)["per_example"]!["a"]![0]!.GetValue<double>()), "strategies[0] 's1'.per_example.a: mean" },
            { Bad(r => S(r, 2)["per_example"]!.AsObject().Remove("x")), "strategies[2] 's3'.per_example: tasks a, b, c differ from per_task's a, b, c, x" },
            { Bad(r => S(r, 2)["per_example"]!["x"]!.AsArray().RemoveAt(0)), "per_example.x: mean" },
            { Bad(r => r.Remove("bootstrap")), "strategies[0] 's1'.held_in_interval: given without a top-level bootstrap" },
            { Bad(r => r["bootstrap"]!["level"] = 1.5), "out/results.json: bootstrap.level: must be in (0, 1)" },
            { Bad(r => r["base_scores"]!.AsObject().Remove("b")), "base_scores.b: missing" },
            { Bad(r => r["base_scores"]!["q"] = 0.1), "base_scores.q: not a task of the study" },
            { Bad(r => r["stages"] = new JsonArray(new JsonObject { ["name"] = "fit", ["seconds"] = -1 })), "stages[0] 'fit'.seconds: must be a finite number ≥ 0" },
            { Bad(r => r["skipped"] = new JsonArray(new JsonObject { ["name"] = "s1", ["reason"] = "--skip" })), "skipped[0] 's1': is also in strategies" },
        };
    }

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void InconsistentNewFieldsAreRefusedInOneLine(string json, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => StudyResultsFile.Parse(json, "out/results.json"));
        Assert.StartsWith("out/results.json: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }
}
