using Amalgam.Evaluation;
using Amalgam.Evaluation.Suites;
using Amalgam.Predictors;
using Amalgam.Routing;
using static TorchSharp.torch;

namespace Amalgam.Strategies;

/// <summary>
/// What several strategies share, computed once and only when first needed: the validation examples, the base
/// model's prompt features, the learned and centroid routers, Arrow's prototypes, and each expert's per-example
/// correctness on validation (for greedy selection).
/// </summary>
public sealed class StrategyContext(ExpertSuite suite, StrategyOptions options) : IDisposable
{
    private LearnedRouter? learned;
    private readonly Dictionary<FeatureSource, (LearnedRouter Router, double Seconds)> cheaper = [];
    private CentroidRouter? centroid;
    private ArrowPrototypes? prototypes;
    private double[,]? correct;
    private IReadOnlyList<LabelledExample>? selection;

    public ExpertSuite Suite => suite;
    public StrategyOptions Options => options;
    public double LearnedRouterSeconds { get; private set; }
    public double CentroidSeconds { get; private set; }
    public double CorrectnessSeconds { get; private set; }

    /// <summary>The layer sizes of the learned router's MLP, for its FLOP count.</summary>
    public IReadOnlyList<int> RouterSizes { get; } = RouterLayers(suite, new LearnedRouterOptions());

    static IReadOnlyList<int> RouterLayers(ExpertSuite s, LearnedRouterOptions o) =>
        [(int)s.Model.Config.HiddenSize, .. Enumerable.Repeat(o.HiddenWidth, o.HiddenLayers), s.Count];

    /// <summary>Base-model mean-pooled hidden states of prompts (the library installed but inactive), [N, hidden].</summary>
    public Tensor Features(IReadOnlyList<IReadOnlyList<long>> prompts) => PromptFeatures.MeanPooled(suite.Model, prompts, suite.PadId);

    public LearnedRouter Learned => learned ??= Timed(() => TrainLearned(suite.Model), s => LearnedRouterSeconds = s);

    /// <summary>A learned router on the base model's features from <paramref name="source"/>, trained once, and the seconds that took.</summary>
    public (LearnedRouter Router, double Seconds) LearnedOn(FeatureSource source)
    {
        if (source.IsFinal) return (Learned, LearnedRouterSeconds);
        if (!cheaper.TryGetValue(source, out var trained))
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var router = TrainLearned(suite.Model, source);
            cheaper[source] = trained = (router, clock.Elapsed.TotalSeconds);
        }
        return trained;
    }

    /// <summary>A learned router on <paramref name="model"/>'s features (Twin-Merging trains its own on the shared model).</summary>
    public LearnedRouter TrainLearned(Models.CausalLM model, FeatureSource source = default)
    {
        var data = suite.Labelled(options.RouterExamplesPerTask);
        using var features = PromptFeatures.MeanPooled(model, data.Select(d => suite.PromptIds(d.Example)).ToList(), suite.PadId, source: source);
        return LearnedRouter.Train(features, data.Select(d => d.Expert).ToList(), suite.Names, seed: options.Seed).Router;
    }

    public CentroidRouter Centroid => centroid ??= Timed(() =>
    {
        var data = suite.Labelled(options.RouterExamplesPerTask);
        using var features = Features(data.Select(d => suite.PromptIds(d.Example)).ToList());
        return CentroidRouter.Build(features, data.Select(d => d.Expert).ToList(), suite.Names);
    }, s => CentroidSeconds = s);

    public ArrowPrototypes Prototypes => prototypes ??= ArrowPrototypes.Build(suite.Experts);

    /// <summary>The examples greedy selection scores on.</summary>
    public IReadOnlyList<LabelledExample> SelectionSet => selection ??= suite.Labelled(options.SelectionExamplesPerTask);

    /// <summary>correct[n, k]: expert k's score alone on selection example n, by its task's metric.</summary>
    public double[,] Correct => correct ??= Timed(() =>
    {
        var result = new double[SelectionSet.Count, suite.Count];
        for (int k = 0; k < suite.Count; k++)
        {
            var scores = SelectionScores(MixturePredictor.Fixed(suite.Model, ReferenceStrategies.OneHot(k, suite.Count)));
            for (int n = 0; n < scores.Length; n++) result[n, k] = scores[n];
        }
        return result;
    }, s => CorrectnessSeconds = s);

    /// <summary>Mean validation score over the held-in tasks (selection set) of a predictor, each task by its own metric.</summary>
    public double ValidationScore(IPredictor predictor) => TaskMean(SelectionScores(predictor));

    /// <summary>Per-example scores on the selection set averaged per task, then over the tasks.</summary>
    public double TaskMean(IReadOnlyList<double> perExample) =>
        SelectionSet.Select((d, n) => (d.Expert, Score: perExample[n])).GroupBy(x => x.Expert).Average(g => g.Average(x => x.Score));

    /// <summary>
    /// A predictor's score on every selection example by the metric of the example's task (the suite evaluator's
    /// scoring: exact match of the greedy answer, or option accuracy), the examples of one metric in one batch.
    /// </summary>
    public double[] SelectionScores(IPredictor predictor)
    {
        var set = SelectionSet;
        var scores = new double[set.Count];
        foreach (var group in Enumerable.Range(0, set.Count).GroupBy(n => suite.ExpertTasks[set[n].Expert].Metric))
        {
            var at = group.ToList();
            var (s, _) = SuiteEvaluator.Score(predictor, suite.Tokenizer, suite.Suite, group.Key, at.Select(n => set[n].Example).ToList());
            for (int i = 0; i < at.Count; i++) scores[at[i]] = s[i];
        }
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

    static T Timed<T>(Func<T> make, Action<double> seconds)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var value = make();
        seconds(clock.Elapsed.TotalSeconds);
        return value;
    }

    public void Dispose()
    {
        learned?.Dispose();
        foreach (var (router, _) in cheaper.Values) router.Dispose();
        centroid?.Dispose();
        prototypes?.Dispose();
    }
}
