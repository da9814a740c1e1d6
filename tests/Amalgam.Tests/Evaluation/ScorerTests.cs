using Amalgam.Evaluation;
using Amalgam.Evaluation.Suites;
using Amalgam.Models;
using Amalgam.Tokenizers;
using static TorchSharp.torch;

namespace Amalgam.Tests.Evaluation;

public class ScorerTests
{
    static (CausalLM, ITextTokenizer) Golden() => (CheckpointLoader.Load(TestData.Golden("llama_gqa")), TokenizerLoader.Load(TestData.Golden("llama_gqa")));

    [Fact]
    public void Option_log_likelihood_is_the_sum_over_the_option_tokens()
    {
        var (model, tok) = Golden();
        using var _ = model;
        var pairs = new List<(string, string)> { ("the cat is", " red"), ("a dog", "s"), ("the cat is", " blue and green") };
        var scores = OptionScorer.LogLikelihoods(model, tok, pairs, batchSize: 2);
        for (int i = 0; i < pairs.Count; i++)
        {
            var prompt = tok.Encode(pairs[i].Item1, addBos: true).Select(x => (long)x).ToList();
            var option = tok.Encode(pairs[i].Item2, addBos: false).Select(x => (long)x).ToList();
            using var logits = model.Logits([.. prompt, .. option]);
            using var logp = nn.functional.log_softmax(logits.to(ScalarType.Float64), -1);
            double expected = option.Select((t, j) => logp[prompt.Count - 1 + j, t].item<double>()).Sum();
            Assert.Equal(expected, scores[i], 4);
        }
    }

    [Fact]
    public void Generation_scoring_is_batched_greedy_decoding_cut_at_a_newline()
    {
        var (model, tok) = Golden();
        using var _ = model;
        var prompts = new[] { "the cat", "a", "who is there?", "no", "123" };
        var answers = GenerationScorer.Answers(model, tok, prompts, maxNewTokens: 6, batchSize: 2);
        long newline = tok.Encode("\n", addBos: false).Single();
        for (int i = 0; i < prompts.Length; i++)
        {
            var ids = GreedyDecoder.Generate(model, [tok.Encode(prompts[i], addBos: true).Select(x => (long)x).ToArray()], 6, [tok.EosId!.Value, newline, 2])[0];
            Assert.Equal(tok.Decode(ids.Select(x => (int)x)), answers[i]);
        }
    }

    [Fact]
    public void The_suite_evaluator_scores_exact_match_and_options()
    {
        var (model, tok) = Golden();
        using var _ = model;
        using var tmp = new TestData.TempDir();
        // Exact match: the answers are batched greedy generations with a budget of the longest target + 4 tokens,
        // and the score is the fraction that equal their target after trimming.
        string format = "{input}\nanswer: ";
        var ll = OptionScorer.LogLikelihoods(model, tok, [("a dog\nanswer: ", "yes"), ("a dog\nanswer: ", "no")]);
        string best = ll[0] >= ll[1] ? "yes" : "no", worst = best == "yes" ? "no" : "yes";
        SuiteWriter.WriteSuiteYaml(tmp.Path, new SuiteSpec("t", "base", [
            new TaskSpec("gen", "f", false, "exact_match", "experts/gen"),
            new TaskSpec("mc", "f", true, "option_accuracy", null)], format));
        void Write(string task, string[] lines)
        {
            Directory.CreateDirectory(Path.Combine(tmp.Path, "data", task));
            foreach (var split in Suite.Splits) File.WriteAllLines(Path.Combine(tmp.Path, "data", task, split + ".jsonl"), lines);
        }
        var budgetAnswers = GenerationScorer.Answers(model, tok, ["the cat\nanswer: ", "the dog\nanswer: "], "zzzzzz".Length + 4);
        Write("gen", [Json("the cat", "q"), Json("the dog", "zzzzzz")]);
        Write("mc", [Json("a dog", best, ["yes", "no"]), Json("a dog", worst, ["yes", "no"]), Json("a dog", best, ["no", "yes"])]);
        var suite = Suite.Load(tmp.Path);
        var gen = SuiteEvaluator.Evaluate(model, tok, suite, suite.Task("gen"));
        Assert.Equal(budgetAnswers, gen.Answers);
        Assert.Equal(new[] { "q", "zzzzzz" }.Select((t, i) => budgetAnswers[i].Trim() == t ? 1.0 : 0.0).Average(), gen.Score);
        var mc = SuiteEvaluator.Evaluate(model, tok, suite, suite.Task("mc"));
        Assert.Equal(2.0 / 3, mc.Score, 12);
        Assert.Equal(3, mc.Count);
    }

    static string Json(string input, string target, string[]? options = null) =>
        System.Text.Json.JsonSerializer.Serialize(options is null ? new { input, target } : (object)new { input, target, options });
}
