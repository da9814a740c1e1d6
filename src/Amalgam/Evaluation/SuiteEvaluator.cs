using Amalgam.Evaluation.Metrics;
using Amalgam.Evaluation.Suites;
using Amalgam.Models;
using Amalgam.Tokenizers;
using Amalgam.Predictors;
using Amalgam.Runtime;

namespace Amalgam.Evaluation;

/// <summary>
/// The score of one task on one split: the mean of <see cref="ExampleScores"/> (one per example, in split order),
/// with the model's answers for inspection. The per-example scores are what the study's paired bootstrap resamples.
/// </summary>
public sealed record TaskEvaluation(string Task, string Family, bool HeldOut, string Metric, double Score, int Count, IReadOnlyList<string> Answers,
    IReadOnlyList<double> ExampleScores);

/// <summary>
/// Scores a model (with whatever adapters are attached) on a suite's tasks: exact match after greedy decoding, or
/// for tasks with options, accuracy of the option with the highest summed log-likelihood.
/// </summary>
public static class SuiteEvaluator
{
    public static TaskEvaluation Evaluate(CausalLM model, ITextTokenizer tokenizer, SuiteDefinition suite, TaskDefinition task,
        string split = Suite.Test, int? limit = null, Truncation truncation = Truncation.None) =>
        Evaluate(new ModelPredictor(model), tokenizer, suite, task, split, limit, truncation);

    /// <summary>
    /// Scores any way of answering (a mixture, an ensemble, a routed library) on one task. A prompt longer than the
    /// model's context (with the answer's budget or its option) is refused naming file:line, or cut as
    /// <paramref name="truncation"/> says.
    /// </summary>
    public static TaskEvaluation Evaluate(IPredictor predictor, ITextTokenizer tokenizer, SuiteDefinition suite, TaskDefinition task,
        string split = Suite.Test, int? limit = null, Truncation truncation = Truncation.None)
    {
        var examples = suite.LoadSplit(task, split);
        if (limit is int n) examples = examples.Take(n).ToList();
        if (examples.Count == 0) throw new InvalidDataException($"{task.SplitPath(split)}: no examples");
        var (scores, answers) = Score(predictor, tokenizer, suite, task.Metric, examples, truncation);
        return new TaskEvaluation(task.Name, task.Family, task.HeldOut, task.Metric, scores.Average(), examples.Count, answers, scores);
    }

    /// <summary>
    /// Every task of <paramref name="tasks"/> that <paramref name="predictorFor"/> answers (null: the task is left
    /// out), side by side on the process's <see cref="TorchWorkers"/>; in task order. The predictors are built
    /// first, on the calling thread; each task is one request set, exactly as <see cref="Evaluate(IPredictor, ITextTokenizer, SuiteDefinition, TaskDefinition, string, int?, Truncation)"/> scores it.
    /// </summary>
    public static IReadOnlyList<TaskEvaluation> EvaluateAll(Func<TaskDefinition, IPredictor?> predictorFor, ITextTokenizer tokenizer, SuiteDefinition suite,
        IEnumerable<TaskDefinition> tasks, string split = Suite.Test, int? limit = null, Truncation truncation = Truncation.None, int? workers = null)
    {
        var work = tasks.Select(t => (Task: t, Predictor: predictorFor(t))).Where(w => w.Predictor is not null).ToList();
        return TorchWorkers.Map(work, w => Evaluate(w.Predictor!, tokenizer, suite, w.Task, split, limit, truncation), workers);
    }

    /// <summary>
    /// Per-example scores of <paramref name="examples"/> under <paramref name="metric"/> (the task's own), with the
    /// answers: option accuracy by summed log-likelihood, or exact match of the greedy answer. Examples of several
    /// tasks that share a metric can be scored in one call (one batch). A prompt too long for the model's context
    /// is refused naming its file:line, or cut as <paramref name="truncation"/> says.
    /// </summary>
    public static (double[] Scores, IReadOnlyList<string> Answers) Score(IPredictor predictor, ITextTokenizer tokenizer, SuiteDefinition suite,
        string metric, IReadOnlyList<Example> examples, Truncation truncation = Truncation.None)
    {
        if (examples.Count == 0) return ([], []);
        var prompts = examples.Select(suite.Prompt).ToList();
        if (metric == MetricNames.OptionAccuracy)
        {
            var pairs = examples.SelectMany((e, i) => e.Options!.Select(o => (prompts[i], o))).ToList();
            var where = examples.SelectMany(e => e.Options!.Select(_ => e.Where)).ToList();
            var ll = OptionScorer.LogLikelihoods(predictor, tokenizer, pairs, truncation, where);
            var answers = new List<string>();
            var scores = new double[examples.Count];
            int at = 0;
            for (int i = 0; i < examples.Count; i++)
            {
                var e = examples[i];
                var options = ll.Skip(at).Take(e.Options!.Count).ToList();
                at += e.Options.Count;
                scores[i] = OptionAccuracy.Score(options, OptionAccuracy.TargetIndex(e.Options, e.Target));
                answers.Add(e.Options[options.IndexOf(options.Max())]);
            }
            return (scores, answers);
        }
        // Budget: the longest target of the examples plus a margin; a right answer must still end the line itself.
        int budget = examples.Max(e => tokenizer.Encode(e.Target, addBos: false).Count) + 4;
        var generated = GenerationScorer.Answers(predictor, tokenizer, prompts, budget, truncation, examples.Select(e => e.Where).ToList());
        return (examples.Select((e, i) => ExactMatch.Score(generated[i], e.Target)).ToArray(), generated);
    }
}
