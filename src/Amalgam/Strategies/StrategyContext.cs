using Amalgam.Evaluation;
using Amalgam.Evaluation.Suites;
using Amalgam.Predictors;
using Amalgam.Routing;
using static TorchSharp.torch;

namespace Amalgam.Strategies;

/// <summary>A value several strategies share, built once, and the seconds building it took (each user charges them).</summary>
public readonly record struct Shared<T>(T Value, double Seconds);

/// <summary>
/// What several strategies share, built once and only when a strategy asks for it: the validation examples, the
/// base model's prompt features, the learned and centroid routers, Arrow's prototypes, and each expert's per-example
/// correctness on validation (for greedy selection). Each shared fit comes back with the seconds it took when built,
/// so every strategy that uses it charges its full cost whatever the order the strategies run in.
/// </summary>
public sealed class StrategyContext(ExpertSuite suite, StrategyOptions options) : IDisposable
{
    private readonly Dictionary<FeatureSource, Shared<LearnedRouter>> learned = [];
    private Shared<CentroidRouter>? centroid;
    private Shared<ArrowPrototypes>? prototypes;
    private Shared<double[,]>? correct;
    private IReadOnlyList<LabelledExample>? selection;

    public ExpertSuite Suite => suite;
    public StrategyOptions Options => options;

    /// <summary>The layer sizes of the learned router's MLP, for its FLOP count.</summary>
    public IReadOnlyList<int> RouterSizes { get; } = RouterLayers(suite, new LearnedRouterOptions());

    static IReadOnlyList<int> RouterLayers(ExpertSuite s, LearnedRouterOptions o) =>
        [(int)s.Model.Config.HiddenSize, .. Enumerable.Repeat(o.HiddenWidth, o.HiddenLayers), s.Count];

    /// <summary>Base-model mean-pooled hidden states of prompts (the library installed but inactive), [N, hidden].</summary>
    public Tensor Features(IReadOnlyList<IReadOnlyList<long>> prompts) => PromptFeatures.MeanPooled(suite.Model, prompts, suite.PadId);

    /// <summary>The learned router on the base model's features from <paramref name="source"/> (default: the full prompt pass), trained once.</summary>
    public Shared<LearnedRouter> LearnedRouter(FeatureSource source = default)
    {
        if (!learned.TryGetValue(source, out var trained))
            learned[source] = trained = Build(() => TrainLearned(suite.Model, source));
        return trained;
    }

    /// <summary>A learned router on <paramref name="model"/>'s features (Twin-Merging trains its own on the shared model).</summary>
    public LearnedRouter TrainLearned(Models.CausalLM model, FeatureSource source = default)
    {
        var data = suite.Labelled(options.RouterExamplesPerTask);
        using var features = PromptFeatures.MeanPooled(model, data.Select(d => suite.PromptIds(d.Example)).ToList(), suite.PadId, source: source);
        return Routing.LearnedRouter.Train(features, data.Select(d => d.Expert).ToList(), suite.Names, seed: options.Seed).Router;
    }

    /// <summary>The nearest-centroid router on the base model's final prompt states, built once.</summary>
    public Shared<CentroidRouter> CentroidRouter() => centroid ??= Build(() =>
    {
        var data = suite.Labelled(options.RouterExamplesPerTask);
        using var features = Features(data.Select(d => suite.PromptIds(d.Example)).ToList());
        return Routing.CentroidRouter.Build(features, data.Select(d => d.Expert).ToList(), suite.Names);
    });

    /// <summary>Arrow's prototypes (each expert's top right singular vector per module), computed once.</summary>
    public Shared<ArrowPrototypes> ArrowPrototypes() => prototypes ??= Build(() => Routing.ArrowPrototypes.Build(suite.Experts));

    /// <summary>The examples greedy selection scores on.</summary>
    public IReadOnlyList<LabelledExample> SelectionSet => selection ??= suite.Labelled(options.SelectionExamplesPerTask);

    /// <summary>correct[n, k]: expert k's score alone on selection example n, by its task's metric; computed once.</summary>
    public Shared<double[,]> ExpertCorrectness() => correct ??= Build(() =>
    {
        var result = new double[SelectionSet.Count, suite.Count];
        for (int k = 0; k < suite.Count; k++)
        {
            var scores = SelectionScores(MixturePredictor.Fixed(suite.Model, ReferenceStrategies.OneHot(k, suite.Count)));
            for (int n = 0; n < scores.Length; n++) result[n, k] = scores[n];
        }
        return result;
    });

    /// <summary>Mean validation score over the held-in tasks (selection set) of a predictor, each task by its own metric.</summary>
    public double ValidationScore(IPredictor predictor) => TaskMean(SelectionScores(predictor));

    /// <summary>Per-example scores on the selection set averaged per task, then over the tasks.</summary>
    public double TaskMean(IReadOnlyList<double> perExample) =>
        SelectionSet.Select((d, n) => (d.Expert, Score: perExample[n])).GroupBy(x => x.Expert).Average(g => g.Average(x => x.Score));

    /// <summary>Selection examples per request set: one forward batch of the predictors (64 prompts).</summary>
    public const int SelectionChunk = 64;

    /// <summary>
    /// A predictor's score on every selection example by the metric of the example's task (the suite evaluator's
    /// scoring: exact match of the greedy answer, or option accuracy). The examples of one metric are cut into
    /// ⌈n / <see cref="SelectionChunk"/>⌉ request sets of near-equal size, scored side by side on the
    /// <see cref="Runtime.TorchWorkers"/>; the cut depends only on the set, never on the thread count. The
    /// predictor must answer each example on its own (every router, merge and ensemble validated here does; a
    /// group-wise merge, which looks at the whole request set, would see only its chunk).
    /// </summary>
    public double[] SelectionScores(IPredictor predictor)
    {
        var set = SelectionSet;
        var scores = new double[set.Count];
        var chunks = new List<(string Metric, List<int> At)>();
        foreach (var group in Enumerable.Range(0, set.Count).GroupBy(n => suite.ExpertTasks[set[n].Expert].Metric))
        {
            var at = group.ToList();
            int parts = (at.Count + SelectionChunk - 1) / SelectionChunk;
            for (int p = 0; p < parts; p++)
            {
                int from = at.Count * p / parts, to = at.Count * (p + 1) / parts;
                chunks.Add((group.Key, at.GetRange(from, to - from)));
            }
        }
        var results = Runtime.TorchWorkers.Map(chunks, c =>
            SuiteEvaluator.Score(predictor, suite.Tokenizer, suite.Suite, c.Metric, c.At.Select(n => set[n].Example).ToList()).Scores);
        for (int c = 0; c < chunks.Count; c++)
            for (int i = 0; i < chunks[c].At.Count; i++) scores[chunks[c].At[i]] = results[c][i];
        return scores;
    }

    private readonly Dictionary<string, double> validationMemo = new(StringComparer.Ordinal);

    /// <summary>
    /// <see cref="ValidationScore"/> of the predictor <paramref name="make"/> builds, computed once per key (e.g. the
    /// uniform merge that task-wise and layer-wise fits are both held against).
    /// </summary>
    public double ValidationScore(string key, Func<IPredictor> make)
    {
        if (!validationMemo.TryGetValue(key, out var v)) validationMemo[key] = v = ValidationScore(make());
        return v;
    }

    static Shared<T> Build<T>(Func<T> make)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var value = make();
        return new Shared<T>(value, clock.Elapsed.TotalSeconds);
    }

    public void Dispose()
    {
        foreach (var router in learned.Values) router.Value.Dispose();
        centroid?.Value.Dispose();
        prototypes?.Value.Dispose();
    }
}
