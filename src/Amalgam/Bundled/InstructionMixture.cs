using System.Text.RegularExpressions;
using Amalgam.Bundled.Tasks;
using Amalgam.Evaluation.Suites;

namespace Amalgam.Bundled;

/// <summary>
/// The instruction-tuning data of the instruct variant, as a general instruction mixture holds a benchmark's tasks:
/// a fraction of each held-in task's training examples, all in ONE of its three phrasings, plus replayed pretraining
/// questions. The test splits use all three phrasings, so the tuned base answers a task when it is asked the way it
/// was taught and falls back on the neighbouring skill otherwise (partial skill, measured in suite/README.md); the
/// expert, trained on every phrasing, covers the rest. No test or validation example is used.
/// </summary>
public static class InstructionMixture
{
    /// <summary>
    /// The first <paramref name="perTask"/> train examples of every held-in task whose input was written from the
    /// task's template number <paramref name="template"/>, then <paramref name="replay"/> pretraining questions
    /// (their own seed), as (prompt, answer) pairs with the suite's prompt format applied.
    /// </summary>
    public static IReadOnlyList<(string Prompt, string Answer)> Build(SuiteDefinition suite, IReadOnlyList<string> words,
        int perTask, int template, int replay, int seed)
    {
        var items = new List<(string, string)>();
        foreach (var task in suite.HeldIn)
        {
            var generator = BundledTasks.Get(task.Name);
            if (template < 0 || template >= generator.Templates.Count)
                throw new ArgumentOutOfRangeException(nameof(template), template, $"{task.Name} has templates 0..{generator.Templates.Count - 1}");
            var phrasing = TemplatePattern(generator.Templates[template]);
            var chosen = suite.LoadSplit(task, Suite.Train).Where(e => phrasing.IsMatch(e.Input)).Take(perTask).ToList();
            if (chosen.Count < perTask)
                throw new InvalidOperationException($"{task.Name}: only {chosen.Count} train examples in phrasing {template} (asked for {perTask})");
            items.AddRange(chosen.Select(e => (suite.Prompt(e), e.Target)));
        }
        if (replay > 0)
            items.AddRange(PretrainingCorpus.Generate(words, replay, StableSeed.Of(seed, "instruction-replay"), suite.PromptFormat));
        return items;
    }

    /// <summary>A template as an anchored pattern: its text literally, each <c>{slot}</c> any non-empty text.</summary>
    public static Regex TemplatePattern(string template) =>
        new("^" + Regex.Replace(Regex.Escape(template), @"\\\{(w|n|a|b|list)}", ".+?") + "$", RegexOptions.CultureInvariant);
}
