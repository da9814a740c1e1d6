using System.Diagnostics;
using Amalgam.Evaluation;
using Amalgam.Evaluation.Suites;
using Amalgam.Predictors;
using Amalgam.Strategies;
using Amalgam.Strategies.Saved;

namespace Amalgam.Study;

/// <summary>What a study runs: the suite, which strategies, how many test examples per task, and the fitting settings.</summary>
/// <param name="SuiteDir">the suite folder</param>
/// <param name="Strategies">catalogue names or families to run; null or empty = all</param>
/// <param name="TestLimit">test examples scored per task; null = all</param>
/// <param name="Fitting">how much validation data fits use, and the seed</param>
/// <param name="ThroughputPrompts">prompts in the tokens/s probe batch</param>
/// <param name="ThroughputTokens">tokens generated per probe prompt</param>
/// <param name="Entries">strategies to run instead of the catalogue's (the CLI verbs build their own variants)</param>
/// <param name="ExportDir">where every deployable strategy is saved as a strategy folder (one per name); null: not saved</param>
/// <param name="Skip">catalogue names or families left out (after <paramref name="Strategies"/>)</param>
/// <param name="Budget">wall-clock cap: once spent, no further strategy starts (the rest are listed as skipped; the first always runs); null = none</param>
/// <param name="BootstrapSamples">paired bootstrap resamples behind every interval (0 = no intervals)</param>
public sealed record StudyOptions(string SuiteDir, IReadOnlyCollection<string>? Strategies = null, int? TestLimit = null,
    StrategyOptions? Fitting = null, int ThroughputPrompts = 32, int ThroughputTokens = 16, IReadOnlyList<StudyCatalog.Entry>? Entries = null,
    string? ExportDir = null, IReadOnlyCollection<string>? Skip = null, TimeSpan? Budget = null, int BootstrapSamples = StudyBootstrap.DefaultSamples)
{
    /// <summary>The --quick configuration: few test examples, little fitting data; every strategy still runs.</summary>
    public static StudyOptions Quick(string suiteDir, IReadOnlyCollection<string>? strategies = null, int seed = 0) =>
        new(suiteDir, strategies, TestLimit: 6, Fitting: StrategyOptions.Quick with { Seed = seed }, ThroughputPrompts: 8, ThroughputTokens: 4);
}

/// <summary>
/// Runs the trade-off study: scores the references (every expert on its own task, the base on every task), then
/// builds each strategy (fitting only on validation splits), scores it on every task's test split keeping each
/// example's score, counts its FLOPs and stored parameters, measures its tokens per second on a fixed probe batch,
/// and finally bootstraps intervals over the test examples (write the results with <see cref="StudyOutputs.Write"/>).
/// Strategies run in catalogue order; one that cannot apply to the suite (<see cref="StudyCatalog.Entry.WhyNot"/>),
/// is skipped by name, or would start after the budget is spent is listed in <c>skipped</c> with the reason.
/// </summary>
public static class StudyRunner
{
    public static StudyResults Run(StudyOptions options, IProgress<string>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        var stages = new StageClock();
        var fitting = options.Fitting ?? new StrategyOptions();
        var entries = options.Entries ?? StudyCatalog.Select(options.Strategies ?? []);
        if (options.Skip is { Count: > 0 } skip) entries = StudyCatalog.Skip(entries, skip);
        progress?.Report("loading the suite");
        using var suite = stages.Time("load suite", () => ExpertSuite.Load(options.SuiteDir));
        if (suite.Count < 2)
            throw new InvalidDataException($"{Path.Combine(options.SuiteDir, Suite.FileName)}: the study compares ways of combining experts and needs at least 2 (this suite has {suite.Count})");
        using var context = new StrategyContext(suite, fitting);
        var tasks = suite.Suite.Tasks;
        var cost = CostModelFor(suite, options.TestLimit);
        var probe = ProbePrompts(suite, options.ThroughputPrompts);

        // The references, scored once: the experts (denominators of the normalised score) and the base (zero point of
        // gap closed). The base and oracle strategies reuse these evaluations instead of repeating them.
        progress?.Report("expert scores (each expert on its own task)");
        // Evaluations are shared between strategies that compute the same function (equal AnswersKey: the base and
        // oracle entries reuse these reference scores, a fit that fell back to uniform reuses the uniform one), and
        // tokens/s probes between strategies that run the same shapes (equal ThroughputKey): key -> first name and figures.
        var answered = new Dictionary<string, (string Name, Dictionary<string, TaskEvaluation> PerTask)>(StringComparer.Ordinal);
        var measured = new Dictionary<string, (string Name, double Value, double Spread)>(StringComparer.Ordinal);
        var expertEvals = new Dictionary<string, TaskEvaluation>();
        stages.Time("expert scores", () =>
        {
            using var oracle = ReferenceStrategies.ExpertOracle(context);
            answered[oracle.AnswersKey!] = (oracle.Name, expertEvals);
            foreach (var e in SuiteEvaluator.EvaluateAll(oracle.PredictorFor, suite.Tokenizer, suite.Suite, suite.ExpertTasks, Suite.Test, options.TestLimit))
                expertEvals[e.Task] = e;
        });
        progress?.Report("base scores (the base on every task)");
        var baseEvals = new Dictionary<string, TaskEvaluation>();
        (double Value, double Spread) baseTokensPerSecond;
        string? baseThroughputKey;
        using (var baseline = ReferenceStrategies.Base(context))
        {
            answered[baseline.AnswersKey!] = (baseline.Name, baseEvals);
            stages.Time("base scores", () =>
            {
                foreach (var e in SuiteEvaluator.EvaluateAll(baseline.PredictorFor, suite.Tokenizer, suite.Suite, tasks, Suite.Test, options.TestLimit))
                    baseEvals[e.Task] = e;
            });
            baseTokensPerSecond = stages.Time("base tokens/s", () => TokensPerSecond(baseline, probe, options.ThroughputTokens, suite.PadId));
            baseThroughputKey = baseline.ThroughputKey;
        }
        if (baseThroughputKey is not null) measured[baseThroughputKey] = ("base", baseTokensPerSecond.Value, baseTokensPerSecond.Spread);
        var expertScores = expertEvals.ToDictionary(e => e.Key, e => e.Value.Score);
        var baseScores = baseEvals.ToDictionary(e => e.Key, e => e.Value.Score);

        var studyTasks = tasks.Select(t => new StudyTask { Name = t.Name, Family = t.Family, HeldOut = t.HeldOut, Metric = t.Metric }).ToList();
        var results = new List<StrategyResult>();
        var skipped = new List<SkippedStrategy>();
        if (options.Skip is { Count: > 0 })
            foreach (var e in (options.Entries ?? StudyCatalog.Select(options.Strategies ?? [])).Where(e => !entries.Contains(e)))
                skipped.Add(new SkippedStrategy { Name = e.Name, Reason = "--skip" });
        for (int i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            string at = $"[{i + 1}/{entries.Count}] {entry.Name}";
            if (entry.WhyNot(suite.Count) is { } why)
            {
                progress?.Report($"{at}: skipped: {why}");
                skipped.Add(new SkippedStrategy { Name = entry.Name, Reason = why });
                continue;
            }
            if (options.Budget is { } budget && results.Count > 0 && clock.Elapsed >= budget)
            {
                string reason = $"--budget {StudyFormat.Duration(budget)} spent ({StudyFormat.Seconds(clock.Elapsed.TotalSeconds)} s when it was due to start)";
                progress?.Report($"{at}: skipped: {reason}");
                skipped.Add(new SkippedStrategy { Name = entry.Name, Reason = reason });
                continue;
            }
            progress?.Report($"{at}: fitting");
            using var strategy = stages.Time($"fit {entry.Family}", () => entry.Build(context));
            if (options.ExportDir is not null && strategy.Saved is { } saved)
            {
                progress?.Report($"{at}: saving");
                stages.Time("export", () => StrategyFolder.Save(saved, suite.Pool, Path.Combine(options.ExportDir, strategy.Name), strategy.Details));
            }
            progress?.Report($"{at}: evaluating");
            var evalClock = Stopwatch.StartNew();
            var same = strategy.AnswersKey is { } ak && answered.TryGetValue(ak, out var scored) ? scored : ((string Name, Dictionary<string, TaskEvaluation> PerTask)?)null;
            string? evaluationFrom = same is { } sm && sm.Name != strategy.Name ? sm.Name : null;
            var evaluations = stages.Time($"evaluate {entry.Family}", () =>
            {
                var found = same?.PerTask;
                var fresh = SuiteEvaluator.EvaluateAll(t => found?.ContainsKey(t.Name) == true ? null : strategy.PredictorFor(t),
                    suite.Tokenizer, suite.Suite, tasks, Suite.Test, options.TestLimit).ToDictionary(e => e.Task);
                var perTask = new Dictionary<string, TaskEvaluation>();
                foreach (var t in tasks)
                    if ((found?.GetValueOrDefault(t.Name) ?? fresh.GetValueOrDefault(t.Name)) is { } e) perTask[t.Name] = e;
                return perTask;
            });
            double evalSeconds = evaluationFrom is null ? evalClock.Elapsed.TotalSeconds : 0;
            if (strategy.AnswersKey is { } key) answered.TryAdd(key, (strategy.Name, evaluations));
            var shared = strategy.ThroughputKey is { } tk && measured.TryGetValue(tk, out var m) ? m : ((string Name, double Value, double Spread)?)null;
            string? tokensFrom = shared is { } sh && sh.Name != strategy.Name ? sh.Name : null;
            var (tokensPerSecond, spread) = shared is { } known ? (known.Value, known.Spread)
                : stages.Time($"tokens/s {entry.Family}", () => TokensPerSecond(strategy, probe, options.ThroughputTokens, suite.PadId));
            if (strategy.ThroughputKey is { } tkey) measured.TryAdd(tkey, (strategy.Name, tokensPerSecond, spread));
            var result = new StrategyResult
            {
                Name = strategy.Name,
                Family = strategy.Family,
                Variant = strategy.Variant,
                Description = strategy.Description,
                Deployable = strategy.Deployable,
                PerTask = evaluations.ToDictionary(e => e.Key, e => e.Value.Score),
                PerExample = options.BootstrapSamples > 0 ? evaluations.ToDictionary(e => e.Key, e => e.Value.ExampleScores.ToArray()) : null,
                RelativeFlops = cost.Relative(strategy.Flops(cost)),
                TokensPerSecond = tokensPerSecond,
                TokensPerSecondSpread = spread,
                TokensPerSecondFrom = tokensFrom,
                EvaluationFrom = evaluationFrom,
                StoredParameters = strategy.StoredParameters,
                FitSeconds = strategy.FitSeconds,
                EvalSeconds = evalSeconds,
                Details = strategy.Details,
            };
            results.Add(Normalization.Fill(result, studyTasks, expertScores, baseScores));
            progress?.Report($"{at}: held-in {results[^1].HeldInNormalized:F3}, gap closed {results[^1].GapClosed?.ToString("F3") ?? "-"}, held-out {results[^1].HeldOut?.ToString("F3") ?? "-"}");
        }
        if (results.Count == 0) throw new ArgumentException("study: no strategy left to run (every one was skipped: " + string.Join("; ", skipped.Select(s => $"{s.Name}: {s.Reason}")) + ")");

        var study = new StudyResults
        {
            Suite = suite.Suite.Name,
            SuitePath = Path.GetFullPath(options.SuiteDir),
            Split = Suite.Test,
            Tasks = studyTasks,
            ExpertScores = expertScores,
            BaseScores = baseScores,
            BaseModel = new BaseModelInfo
            {
                Path = suite.Suite.BasePath,
                Architecture = suite.Model.Config.Architecture,
                Parameters = FlopCounter.Parameters(suite.Model.Config),
                FlopsPerExample = cost.Base(),
                PromptTokens = cost.PromptTokens,
                AnswerTokens = cost.AnswerTokens,
                TokensPerSecond = baseTokensPerSecond.Value,
            },
            Seed = fitting.Seed,
            Machine = MachineInfo.Current(),
            CreatedAt = DateTimeOffset.UtcNow,
            Strategies = results,
            Skipped = skipped,
        };
        if (options.BootstrapSamples > 0)
        {
            progress?.Report($"bootstrap ({options.BootstrapSamples} paired resamples of the test examples)");
            var settings = new BootstrapSettings { Samples = options.BootstrapSamples, Seed = fitting.Seed, Level = StudyBootstrap.DefaultLevel };
            study = stages.Time("bootstrap", () => StudyBootstrap.WithIntervals(study, settings));
        }
        if (options.ExportDir is not null) stages.Time("export", () => ExportRecommended(study, options.ExportDir));
        return study with { TotalSeconds = clock.Elapsed.TotalSeconds, Stages = stages.Stages(clock.Elapsed.TotalSeconds) };
    }

    /// <summary>Copies the recommendation of every budget to <c>recommended/&lt;budget&gt;</c> beside the saved strategies.</summary>
    static void ExportRecommended(StudyResults study, string exportDir)
    {
        foreach (var pick in Recommendation.Compute(study))
        {
            if (pick.Best is not { } best || !Directory.Exists(Path.Combine(exportDir, best.Name))) continue;
            string slug = double.IsPositiveInfinity(pick.Budget.MaxRelativeFlops) ? "any-cost" : $"within-{pick.Budget.MaxRelativeFlops:0.###}x";
            StrategyFolder.Copy(Path.Combine(exportDir, best.Name), Path.Combine(exportDir, "recommended", slug));
        }
    }

    /// <summary>Mean prompt (bos included) and answer (target + eos) lengths over the evaluated test examples.</summary>
    static CostModel CostModelFor(ExpertSuite s, int? limit)
    {
        var examples = s.Suite.Tasks.SelectMany(t => s.Suite.LoadSplit(t, Suite.Test).Take(limit ?? int.MaxValue)).ToList();
        double prompt = examples.Average(e => s.PromptIds(e).Count);
        double answer = examples.Average(e => s.Tokenizer.Encode(e.Target, addBos: false).Count + 1);
        var modules = s.Experts[0].Deltas.ToDictionary(kv => kv.Key, kv => (int)kv.Value.Rank);
        return new CostModel(s.Model.Config, modules, prompt, answer);
    }

    /// <summary>The probe batch: test prompts taken round-robin over the tasks, with the task each belongs to.</summary>
    static List<(TaskDefinition Task, IReadOnlyList<long> Prompt)> ProbePrompts(ExpertSuite s, int count)
    {
        var tasks = s.Suite.Tasks;
        return Enumerable.Range(0, count).Select(r => (tasks[r % tasks.Count],
            s.PromptIds(s.Suite.LoadSplit(tasks[r % tasks.Count], Suite.Test)[r / tasks.Count]))).ToList();
    }

    /// <summary>Timed probe runs per measurement (after one warm-up run): two give a fastest run and a spread.</summary>
    public const int ProbeRuns = 2;

    /// <summary>
    /// Generated tokens per second on the probe batch (no stop tokens, so every row makes every token): the faster of
    /// <see cref="ProbeRuns"/> timed runs after a warm-up (the machine's noise only ever slows a run down), and the runs'
    /// spread (slowest − fastest) / fastest, which says whether the figure can be trusted. A strategy with one predictor
    /// for all tasks runs the batch at once. The probe runs alone, with the process's full thread count.
    /// </summary>
    static (double Value, double Spread) TokensPerSecond(Strategy strategy, List<(TaskDefinition Task, IReadOnlyList<long> Prompt)> probe, int tokens, long pad)
    {
        var groups = probe.GroupBy(p => p.Task.Name).Select(g => (Predictor: strategy.PredictorFor(g.First().Task), Prompts: g.Select(p => p.Prompt).ToList()))
            .Where(g => g.Predictor is not null).ToList();
        if (groups.Count == 0) return (0, 0);
        var predictors = groups.Select(g => g.Predictor!).Distinct().ToList();
        var runs = predictors.Count == 1 ? [(Predictor: predictors[0], Prompts: groups.SelectMany(g => g.Prompts).ToList())] : groups!;
        int total = runs.Sum(r => r.Prompts.Count) * tokens;
        void Once() { foreach (var r in runs) r.Predictor!.Generate(r.Prompts, tokens, [], pad); }
        Once();
        var times = Enumerable.Range(0, ProbeRuns).Select(_ => { var sw = Stopwatch.StartNew(); Once(); return sw.Elapsed.TotalSeconds; }).ToList();
        return (total / times.Min(), (times.Max() - times.Min()) / times.Min());
    }
}

/// <summary>Wall-clock and CPU seconds per named stage, summed over repeats, in order of first use.</summary>
sealed class StageClock
{
    readonly List<(string Name, double Seconds, double Cpu)> stages = [];
    readonly Process self = Process.GetCurrentProcess();

    double Cpu()
    {
        self.Refresh();
        return self.TotalProcessorTime.TotalSeconds;
    }

    public T Time<T>(string name, Func<T> work)
    {
        var clock = Stopwatch.StartNew();
        double cpu = Cpu();
        try { return work(); }
        finally { Add(name, clock.Elapsed.TotalSeconds, Cpu() - cpu); }
    }

    public void Time(string name, Action work) => Time(name, () => { work(); return 0; });

    void Add(string name, double seconds, double cpu)
    {
        int i = stages.FindIndex(s => s.Name == name);
        if (i < 0) stages.Add((name, seconds, cpu));
        else stages[i] = (name, stages[i].Seconds + seconds, stages[i].Cpu + cpu);
    }

    /// <summary>The stages, plus "other" for whatever of <paramref name="total"/> no stage covers (cost model, probe prompts, result assembly).</summary>
    public List<StudyStage> Stages(double total)
    {
        var list = stages.Select(s => new StudyStage { Name = s.Name, Seconds = Math.Round(s.Seconds, 3), CpuSeconds = Math.Round(Math.Max(0, s.Cpu), 3) }).ToList();
        list.Add(new StudyStage { Name = "other", Seconds = Math.Round(Math.Max(0, total - stages.Sum(s => s.Seconds)), 3) });
        return list;
    }
}
