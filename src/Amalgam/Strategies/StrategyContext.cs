using Amalgam.Evaluation;
using Amalgam.Evaluation.Metrics;
using Amalgam.Evaluation.Suites;
using Amalgam.Predictors;
using Amalgam.Routing;
using Amalgam.Study;
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
    public IReadOnlyList<int> RouterSizes => [(int)suite.Model.Config.HiddenSize, .. Enumerable.Repeat(new LearnedRouterOptions().HiddenWidth, new LearnedRouterOptions().HiddenLayers), suite.Count];

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
        var set = SelectionSet;
        var result = new double[set.Count, suite.Count];
        var prompts = set.Select(d => suite.Suite.Prompt(d.Example)).ToList();
        int budget = set.Max(d => suite.Tokenizer.Encode(d.Example.Target, addBos: false).Count) + 4;
        for (int k = 0; k < suite.Count; k++)
        {
            using var w = nn.functional.one_hot(tensor((long)k), suite.Count).to(ScalarType.Float32);
            var answers = GenerationScorer.Answers(MixturePredictor.Fixed(suite.Model, w), suite.Tokenizer, prompts, budget);
            for (int n = 0; n < set.Count; n++) result[n, k] = ExactMatch.Score(answers[n], set[n].Example.Target);
        }
        return result;
    }, s => CorrectnessSeconds = s);

    /// <summary>Mean validation score over the held-in tasks (selection set) of a predictor.</summary>
    public double ValidationScore(IPredictor predictor)
    {
        var set = SelectionSet;
        var prompts = set.Select(d => suite.Suite.Prompt(d.Example)).ToList();
        int budget = set.Max(d => suite.Tokenizer.Encode(d.Example.Target, addBos: false).Count) + 4;
        var answers = GenerationScorer.Answers(predictor, suite.Tokenizer, prompts, budget);
        return set.Select((d, n) => (d.Expert, Score: ExactMatch.Score(answers[n], d.Example.Target)))
            .GroupBy(x => x.Expert).Average(g => g.Average(x => x.Score));
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
