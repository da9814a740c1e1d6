using Amalgam.Evaluation.Metrics;
using Amalgam.Evaluation.Suites;
using Amalgam.Models;
using Amalgam.Tokenizers;
using Amalgam.Predictors;

namespace Amalgam.Evaluation;

/// <summary>The score of one task on one split, with the model's answers for inspection.</summary>
public sealed record TaskEvaluation(string Task, string Family, bool HeldOut, string Metric, double Score, int Count, IReadOnlyList<string> Answers);

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
        var prompts = examples.Select(suite.Prompt).ToList();
        if (task.Metric == MetricNames.OptionAccuracy)
        {
            var pairs = examples.SelectMany((e, i) => e.Options!.Select(o => (prompts[i], o))).ToList();
            var where = examples.SelectMany(e => e.Options!.Select(_ => e.Where)).ToList();
            var ll = OptionScorer.LogLikelihoods(predictor, tokenizer, pairs, truncation, where);
            var answers = new List<string>();
            double total = 0;
            int at = 0;
            foreach (var e in examples)
            {
                var scores = ll.Skip(at).Take(e.Options!.Count).ToList();
                at += e.Options.Count;
                total += OptionAccuracy.Score(scores, OptionAccuracy.TargetIndex(e.Options, e.Target));
                answers.Add(e.Options[scores.IndexOf(scores.Max())]);
            }
            return new TaskEvaluation(task.Name, task.Family, task.HeldOut, task.Metric, total / examples.Count, examples.Count, answers);
        }
        // Budget: the longest target of the split plus a margin; a right answer must still end the line itself.
        int budget = examples.Max(e => tokenizer.Encode(e.Target, addBos: false).Count) + 4;
        var generated = GenerationScorer.Answers(predictor, tokenizer, prompts, budget, truncation, examples.Select(e => e.Where).ToList());
        double score = examples.Select((e, i) => ExactMatch.Score(generated[i], e.Target)).Average();
        return new TaskEvaluation(task.Name, task.Family, task.HeldOut, task.Metric, score, examples.Count, generated);
    }
}
