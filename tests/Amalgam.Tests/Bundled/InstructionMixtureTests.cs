using Amalgam.Bundled;
using Amalgam.Bundled.Tasks;
using Amalgam.Evaluation.Suites;
using Amalgam.Tests.Bundled.Tasks;

namespace Amalgam.Tests.Bundled;

public class InstructionMixtureTests
{
    [Fact]
    public void The_mixture_takes_the_first_train_examples_in_one_phrasing_of_every_held_in_task_plus_the_replay()
    {
        using var tmp = new TestData.TempDir();
        var words = FakeWords.List(400);
        var suite = SuiteDataBuilder.Build(tmp["suite"], 42, words, 90, 5, 5);
        var mixture = InstructionMixture.Build(suite, words.Words, perTask: 6, template: 1, replay: 10, seed: 42);

        Assert.Equal(12 * 6 + 10, mixture.Count);
        int at = 0;
        foreach (var task in suite.HeldIn)
        {
            var templates = BundledTasks.Get(task.Name).Templates;
            var expected = suite.LoadSplit(task, Suite.Train).Where(e => InstructionMixture.TemplatePattern(templates[1]).IsMatch(e.Input)).Take(6)
                .Select(e => (suite.Prompt(e), e.Target)).ToList();
            Assert.Equal(expected, mixture.Skip(at).Take(6));
            foreach (var (prompt, _) in expected)
            {
                string input = prompt[..^"\nAnswer: ".Length];
                Assert.Equal([false, true, false], templates.Select(t => InstructionMixture.TemplatePattern(t).IsMatch(input)));
            }
            at += 6;
        }
        // The replay is pretraining text, none of it a task's example.
        var taskPrompts = suite.Tasks.SelectMany(t => Suite.Splits.SelectMany(s => suite.LoadSplit(t, s))).Select(suite.Prompt).ToHashSet();
        Assert.All(mixture.Skip(at), m => Assert.DoesNotContain(m.Prompt, taskPrompts));
        Assert.Equal(mixture, InstructionMixture.Build(suite, words.Words, 6, 1, 10, 42)); // deterministic
    }

    [Fact]
    public void Too_few_examples_in_the_phrasing_or_a_template_out_of_range_is_refused()
    {
        using var tmp = new TestData.TempDir();
        var words = FakeWords.List(400);
        var suite = SuiteDataBuilder.Build(tmp["suite"], 42, words, 9, 5, 5);
        var e = Assert.Throws<InvalidOperationException>(() => InstructionMixture.Build(suite, words.Words, 9, 0, 0, 42));
        Assert.Matches("^first_letter: only [0-9] train examples in phrasing 0 \\(asked for 9\\)$", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => InstructionMixture.Build(suite, words.Words, 1, 3, 0, 42));
    }

    [Fact]
    public void A_template_pattern_matches_its_own_inputs_only()
    {
        var p = InstructionMixture.TemplatePattern("Give the first letter of \"{w}\".");
        Assert.Matches(p, "Give the first letter of \"night\".");
        Assert.DoesNotMatch(p, "Give the first letter of \"night\"");
        Assert.DoesNotMatch(p, "Give the last letter of \"night\".");
        Assert.DoesNotMatch(p, "Xgive the first letter of \"night\".");
    }
}
