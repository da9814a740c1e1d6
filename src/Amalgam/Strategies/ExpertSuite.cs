using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using Amalgam.Tokenizers;

namespace Amalgam.Strategies;

/// <summary>
/// A suite's base model with every held-in task's expert installed (an <see cref="ExpertPool"/>), plus the suite's
/// tasks and data: what the study's strategies are fitted on. Expert k is the expert of <see cref="ExpertTasks"/>[k].
/// </summary>
public sealed class ExpertSuite : IDisposable
{
    private ExpertSuite(SuiteDefinition suite, ExpertPool pool, List<TaskDefinition> tasks)
    {
        Suite = suite;
        Pool = pool;
        ExpertTasks = tasks;
    }

    public SuiteDefinition Suite { get; }
    /// <summary>The base and the held-in tasks' experts, named after their tasks.</summary>
    public ExpertPool Pool { get; }
    public ITextTokenizer Tokenizer => Pool.Tokenizer;
    public CausalLM Model => Pool.Model;
    public IReadOnlyList<LoraAdapter> Experts => Pool.Experts;
    public IReadOnlyList<TaskDefinition> ExpertTasks { get; }
    public ExpertLibrary Library => Pool.Library!;
    public long PadId => Pool.PadId;
    public int Count => Pool.Count;
    /// <summary>The experts' task names, in library order.</summary>
    public IReadOnlyList<string> Names => Pool.Names;

    /// <summary>Loads the suite's base and the experts of its held-in tasks (every held-in task needs one).</summary>
    public static ExpertSuite Load(string suiteDir)
    {
        var suite = Evaluation.Suites.Suite.Load(suiteDir);
        var tasks = suite.HeldIn.ToList();
        if (tasks.Count == 0) throw new InvalidDataException($"{Path.Combine(suiteDir, Evaluation.Suites.Suite.FileName)}: no held-in task has an expert to combine");
        foreach (var t in tasks.Where(t => t.ExpertPath is null))
            throw new InvalidDataException($"{Path.Combine(suiteDir, Evaluation.Suites.Suite.FileName)}: task '{t.Name}' is held in but names no expert");
        return new ExpertSuite(suite, ExpertPool.Load(suite.BasePath, tasks.Select(t => (t.Name, t.ExpertPath!)).ToList()), tasks);
    }

    /// <summary>The index of a held-in task's expert, or -1 for a task without one.</summary>
    public int ExpertOf(TaskDefinition task) => Names.ToList().IndexOf(task.Name);

    /// <summary>bos + the task's prompt for an example.</summary>
    public IReadOnlyList<long> PromptIds(Example e) => Tokenizer.Encode(Suite.Prompt(e), addBos: true).Select(i => (long)i).ToArray();

    /// <summary>bos + prompt + target + eos, the loss on the target and eos (as the experts were trained).</summary>
    public TokenSequence Sequence(Example e) => ExampleSequences.Of(Tokenizer, Suite, e, Model.Config);

    /// <summary>
    /// Up to <paramref name="perTask"/> examples of every held-in task's split, labelled with the index of its
    /// expert: the data that weights, routers, clusters and subsets are fitted on (validation unless said otherwise).
    /// </summary>
    public IReadOnlyList<LabelledExample> Labelled(int perTask, string split = Evaluation.Suites.Suite.Validation) =>
        ExpertTasks.SelectMany((t, k) => Suite.LoadSplit(t, split).Take(perTask).Select(e => new LabelledExample(e, k))).ToList();

    public void Dispose() => Pool.Dispose();
}

/// <summary>An example and the index of the expert of the task it comes from.</summary>
public sealed record LabelledExample(Example Example, int Expert);
