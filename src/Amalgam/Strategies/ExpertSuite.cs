using Amalgam.Bundled;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using Amalgam.Tokenizers;
using Amalgam.Training;

namespace Amalgam.Strategies;

/// <summary>
/// A suite's base model with every held-in task's expert installed as one <see cref="ExpertLibrary"/>: what every
/// fusion strategy starts from. Expert k is the expert of <see cref="ExpertTasks"/>[k]. Without a mixing policy the
/// model is the base alone, so one loaded model serves the base, every mixture and every ensemble.
/// </summary>
public sealed class ExpertSuite : IDisposable
{
    private ExpertSuite(SuiteDefinition suite, ITextTokenizer tokenizer, CausalLM model, List<LoraAdapter> experts, List<TaskDefinition> tasks)
    {
        Suite = suite;
        Tokenizer = tokenizer;
        Model = model;
        Experts = experts;
        ExpertTasks = tasks;
        Library = new ExpertLibrary(model, experts);
        PadId = GenerationDefaults.PadId(tokenizer, model.Config);
        Names = tasks.Select(t => t.Name).ToList();
    }

    public SuiteDefinition Suite { get; }
    public ITextTokenizer Tokenizer { get; }
    public CausalLM Model { get; }
    public IReadOnlyList<LoraAdapter> Experts { get; }
    public IReadOnlyList<TaskDefinition> ExpertTasks { get; }
    public ExpertLibrary Library { get; }
    public long PadId { get; }
    public int Count => Experts.Count;
    /// <summary>The experts' task names, in library order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Loads the suite's base and the experts of its held-in tasks (every held-in task needs one).</summary>
    public static ExpertSuite Load(string suiteDir)
    {
        var suite = Evaluation.Suites.Suite.Load(suiteDir);
        var tasks = suite.HeldIn.ToList();
        if (tasks.Count == 0) throw new InvalidDataException($"{Path.Combine(suiteDir, Evaluation.Suites.Suite.FileName)}: no held-in task has an expert to combine");
        foreach (var t in tasks.Where(t => t.ExpertPath is null))
            throw new InvalidDataException($"{Path.Combine(suiteDir, Evaluation.Suites.Suite.FileName)}: task '{t.Name}' is held in but names no expert");
        var tokenizer = TokenizerLoader.Load(suite.BasePath);
        var model = CheckpointLoader.Load(suite.BasePath);
        try
        {
            var experts = tasks.Select(t => LoraAdapter.Load(t.ExpertPath!, model)).ToList();
            return new ExpertSuite(suite, tokenizer, model, experts, tasks);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The index of a held-in task's expert, or -1 for a task without one.</summary>
    public int ExpertOf(TaskDefinition task) => Names.ToList().IndexOf(task.Name);

    /// <summary>bos + the task's prompt for an example.</summary>
    public IReadOnlyList<long> PromptIds(Example e) => Tokenizer.Encode(Suite.Prompt(e), addBos: true).Select(i => (long)i).ToArray();

    /// <summary>bos + prompt + target + eos, the loss on the target and eos (as the experts were trained).</summary>
    public TokenSequence Sequence(Example e) => ExampleSequences.Of(Tokenizer, Suite, e);

    /// <summary>
    /// Up to <paramref name="perTask"/> examples of every held-in task's split, labelled with the index of its
    /// expert: the data that weights, routers, clusters and subsets are fitted on (validation unless said otherwise).
    /// </summary>
    public IReadOnlyList<LabelledExample> Labelled(int perTask, string split = Evaluation.Suites.Suite.Validation) =>
        ExpertTasks.SelectMany((t, k) => Suite.LoadSplit(t, split).Take(perTask).Select(e => new LabelledExample(e, k))).ToList();

    public void Dispose()
    {
        Library.Dispose();
        foreach (var e in Experts) e.Dispose();
        Model.Dispose();
    }
}

/// <summary>An example and the index of the expert of the task it comes from.</summary>
public sealed record LabelledExample(Example Example, int Expert);
