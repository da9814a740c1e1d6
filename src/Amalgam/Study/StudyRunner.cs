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
public sealed record StudyOptions(string SuiteDir, IReadOnlyCollection<string>? Strategies = null, int? TestLimit = null,
    StrategyOptions? Fitting = null, int ThroughputPrompts = 32, int ThroughputTokens = 16, IReadOnlyList<StudyCatalog.Entry>? Entries = null,
    string? ExportDir = null)
{
    /// <summary>The --quick configuration: few test examples, little fitting data; every strategy still runs.</summary>
    public static StudyOptions Quick(string suiteDir, IReadOnlyCollection<string>? strategies = null, int seed = 0) =>
        new(suiteDir, strategies, TestLimit: 6, Fitting: StrategyOptions.Quick with { Seed = seed }, ThroughputPrompts: 8, ThroughputTokens: 4);
}

/// <summary>
/// Runs the trade-off study: builds each strategy (fitting only on validation splits), scores it on every task's
/// test split, counts its FLOPs and stored parameters, measures its tokens per second on a fixed probe batch, and
/// returns the results (write them with <see cref="StudyOutputs.Write"/>).
/// </summary>
public static class StudyRunner
{
    public static StudyResults Run(StudyOptions options, IProgress<string>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        var fitting = options.Fitting ?? new StrategyOptions();
        var entries = options.Entries ?? StudyCatalog.Select(options.Strategies ?? []);
        using var suite = ExpertSuite.Load(options.SuiteDir);
        using var context = new StrategyContext(suite, fitting);
        var tasks = suite.Suite.Tasks;
        var cost = CostModelFor(suite, options.TestLimit);
        var probe = ProbePrompts(suite, options.ThroughputPrompts);

        progress?.Report("expert scores (each expert on its own task)");
        var expertScores = new Dictionary<string, double>();
        double baseTokensPerSecond;
        using (var oracle = ReferenceStrategies.ExpertOracle(context))
        {
            foreach (var t in suite.ExpertTasks)
                expertScores[t.Name] = SuiteEvaluator.Evaluate(oracle.PredictorFor(t)!, suite.Tokenizer, suite.Suite, t, Suite.Test, options.TestLimit).Score;
        }
        using (var baseline = ReferenceStrategies.Base(context)) baseTokensPerSecond = TokensPerSecond(baseline, probe, options.ThroughputTokens, suite.PadId);

        var studyTasks = tasks.Select(t => new StudyTask { Name = t.Name, Family = t.Family, HeldOut = t.HeldOut, Metric = t.Metric }).ToList();
        var results = new List<StrategyResult>();
        for (int i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            progress?.Report($"[{i + 1}/{entries.Count}] {entry.Name}: fitting");
            using var strategy = entry.Build(context);
            if (options.ExportDir is not null && strategy.Saved is { } saved)
            {
                progress?.Report($"[{i + 1}/{entries.Count}] {entry.Name}: saving");
                StrategyFolder.Save(saved, suite.Pool, Path.Combine(options.ExportDir, strategy.Name), strategy.Details);
            }
            progress?.Report($"[{i + 1}/{entries.Count}] {entry.Name}: evaluating");
            var evalClock = Stopwatch.StartNew();
            var perTask = new Dictionary<string, double>();
            foreach (var t in tasks)
                if (strategy.PredictorFor(t) is { } predictor)
                    perTask[t.Name] = SuiteEvaluator.Evaluate(predictor, suite.Tokenizer, suite.Suite, t, Suite.Test, options.TestLimit).Score;
            double evalSeconds = evalClock.Elapsed.TotalSeconds;
            var result = new StrategyResult
            {
                Name = strategy.Name,
                Family = strategy.Family,
                Variant = strategy.Variant,
                Description = strategy.Description,
                Deployable = strategy.Deployable,
                PerTask = perTask,
                RelativeFlops = cost.Relative(strategy.Flops(cost)),
                TokensPerSecond = TokensPerSecond(strategy, probe, options.ThroughputTokens, suite.PadId),
                StoredParameters = strategy.StoredParameters,
                FitSeconds = strategy.FitSeconds,
                EvalSeconds = evalSeconds,
                Details = strategy.Details,
            };
            results.Add(Normalization.Fill(result, studyTasks, expertScores));
            progress?.Report($"[{i + 1}/{entries.Count}] {entry.Name}: held-in {results[^1].HeldInNormalized:F3}, held-out {results[^1].HeldOut?.ToString("F3") ?? "-"}");
        }

        var study = new StudyResults
        {
            Suite = suite.Suite.Name,
            SuitePath = Path.GetFullPath(options.SuiteDir),
            Split = Suite.Test,
            Tasks = studyTasks,
            ExpertScores = expertScores,
            BaseModel = new BaseModelInfo
            {
                Path = suite.Suite.BasePath,
                Architecture = suite.Model.Config.Architecture,
                Parameters = FlopCounter.Parameters(suite.Model.Config),
                FlopsPerExample = cost.Base(),
                PromptTokens = cost.PromptTokens,
                AnswerTokens = cost.AnswerTokens,
                TokensPerSecond = baseTokensPerSecond,
            },
            Seed = fitting.Seed,
            Machine = MachineInfo.Current(),
            TotalSeconds = clock.Elapsed.TotalSeconds,
            CreatedAt = DateTimeOffset.UtcNow,
            Strategies = results,
        };
        if (options.ExportDir is not null) ExportRecommended(study, options.ExportDir);
        return study;
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

    /// <summary>
    /// Generated tokens per second on the probe batch (no stop tokens, so every row makes every token): the fastest of
    /// three timed runs after a warm-up (the machine's noise only ever slows a run down). A strategy with one predictor
    /// for all tasks runs the batch at once.
    /// </summary>
    static double TokensPerSecond(Strategy strategy, List<(TaskDefinition Task, IReadOnlyList<long> Prompt)> probe, int tokens, long pad)
    {
        var groups = probe.GroupBy(p => p.Task.Name).Select(g => (Predictor: strategy.PredictorFor(g.First().Task), Prompts: g.Select(p => p.Prompt).ToList()))
            .Where(g => g.Predictor is not null).ToList();
        if (groups.Count == 0) return 0;
        var predictors = groups.Select(g => g.Predictor!).Distinct().ToList();
        var runs = predictors.Count == 1 ? [(Predictor: predictors[0], Prompts: groups.SelectMany(g => g.Prompts).ToList())] : groups!;
        int total = runs.Sum(r => r.Prompts.Count) * tokens;
        void Once() { foreach (var r in runs) r.Predictor!.Generate(r.Prompts, tokens, [], pad); }
        Once();
        var fastest = Enumerable.Range(0, 3).Min(_ => { var sw = Stopwatch.StartNew(); Once(); return sw.Elapsed.TotalSeconds; });
        return total / fastest;
    }
}
