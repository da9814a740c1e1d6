using Amalgam.Evaluation;
using Amalgam.Evaluation.Metrics;
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

    /// <summary>A learned router on <paramref name="model"/>'s features (Twin-Merging trains its own on the shared model).</summary>
    public LearnedRouter TrainLearned(Models.CausalLM model)
    {
        var data = suite.Labelled(options.RouterExamplesPerTask);
        using var features = PromptFeatures.MeanPooled(model, data.Select(d => suite.PromptIds(d.Example)).ToList(), suite.PadId);
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

    /// <summary>correct[n, k]: whether expert k alone answers selection example n exactly.</summary>
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

    /// <summary>Mean validation score over the held-in tasks (selection set) of a predictor.</summary>
    public double ValidationScore(IPredictor predictor) => TaskMean(SelectionScores(predictor));

    /// <summary>Per-example scores on the selection set averaged per task, then over the tasks.</summary>
    public double TaskMean(IReadOnlyList<double> perExample) =>
        SelectionSet.Select((d, n) => (d.Expert, Score: perExample[n])).GroupBy(x => x.Expert).Average(g => g.Average(x => x.Score));

    /// <summary>Exact match of a predictor's greedy answer on every selection example.</summary>
    double[] SelectionScores(IPredictor predictor)
    {
        var set = SelectionSet;
        int budget = set.Max(d => suite.Tokenizer.Encode(d.Example.Target, addBos: false).Count) + 4;
        var answers = GenerationScorer.Answers(predictor, suite.Tokenizer, set.Select(d => suite.Suite.Prompt(d.Example)).ToList(), budget,
            where: set.Select(d => d.Example.Where).ToList());
        return set.Select((d, n) => ExactMatch.Score(answers[n], d.Example.Target)).ToArray();
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
        centroid?.Dispose();
        prototypes?.Dispose();
    }
}
