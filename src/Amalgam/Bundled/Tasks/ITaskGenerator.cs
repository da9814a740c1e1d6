using Amalgam.Evaluation.Suites;

namespace Amalgam.Bundled.Tasks;

/// <summary>
/// Generates examples of one bundled task. Inputs state the instruction in words, through one of
/// <see cref="Templates"/> chosen at random per example, so no fixed string names the task.
/// </summary>
public interface ITaskGenerator
{
    string Name { get; }
    string Family { get; }
    bool HeldOut { get; }

    /// <summary><c>exact_match</c> or <c>option_accuracy</c> (see <see cref="Amalgam.Evaluation.Metrics.MetricNames"/>).</summary>
    string Metric { get; }

    /// <summary>The paraphrased instructions, with placeholders <c>{w}</c>, <c>{n}</c>, <c>{a}</c>, <c>{b}</c> or <c>{list}</c>.</summary>
    IReadOnlyList<string> Templates { get; }

    /// <summary>One example drawing its words and numbers from <paramref name="words"/>.</summary>
    Example Generate(Random rng, WordList words);
}

/// <summary>
/// A task made of templates and a function that draws the slot values, the target and (optionally) the options.
/// The values are drawn first, then the template.
/// </summary>
public sealed class TemplatedTask(string name, string family, bool heldOut, string metric, string[] templates,
    Func<Random, WordList, TemplatedTask.Draw> draw) : ITaskGenerator
{
    /// <summary>Slot values (placeholder name without braces → text), the target and the options (or null).</summary>
    public sealed record Draw(IReadOnlyDictionary<string, string> Slots, string Target, IReadOnlyList<string>? Options = null);

    public string Name { get; } = name;
    public string Family { get; } = family;
    public bool HeldOut { get; } = heldOut;
    public string Metric { get; } = metric;
    public IReadOnlyList<string> Templates { get; } = templates;

    public Example Generate(Random rng, WordList words)
    {
        var d = draw(rng, words);
        string input = Templates[rng.Next(Templates.Count)];
        foreach (var (slot, value) in d.Slots) input = input.Replace("{" + slot + "}", value, StringComparison.Ordinal);
        return new Example(input, d.Target, d.Options);
    }

    public override string ToString() => Name;
}
