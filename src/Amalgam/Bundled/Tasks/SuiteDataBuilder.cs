using Amalgam.Evaluation.Suites;

namespace Amalgam.Bundled.Tasks;

/// <summary>
/// Generates the bundled suite's data: every task's train, validation and test splits and suite.yaml.
/// <list type="bullet">
/// <item>The words and the numbers 0..999 are first partitioned by the seed (<see cref="WordList.Partition"/>): 10%
/// for test, 10% for validation, 80% for train, the same partition for every task. A test example uses only test
/// words and test numbers, so no word or number of a test input appears in any task's training data.</item>
/// <item>Each (task, split) has its own <see cref="Random"/> seeded from the seed, the task name and the split
/// (<see cref="StableSeed"/>), so the test split does not change when the train size does.</item>
/// <item>Inputs are unique within a task: test is drawn first, then validation, then train, and a draw whose input
/// was already produced (in any split of the task) is rejected. Drawing gives up with an error when the space of
/// inputs is too small for the sizes asked for.</item>
/// </list>
/// </summary>
public static class SuiteDataBuilder
{
    public const string SuiteName = "amalgam-bundled";
    public const string BaseFolder = "base";
    public const double HeldFraction = 0.1;

    /// <summary>suite.yaml of the bundled suite: base <c>base</c>, experts <c>experts/&lt;task&gt;</c> for held-in tasks.</summary>
    public static SuiteSpec Spec() => new(SuiteName, BaseFolder,
        BundledTasks.All.Select(t => new TaskSpec(t.Name, t.Family, t.HeldOut, t.Metric,
            t.HeldOut ? null : $"experts/{t.Name}", $"data/{t.Name}")).ToList());

    public static SuiteDefinition Build(string suiteDir, int seed, WordList words, int train = 2000, int validation = 100, int test = 100)
    {
        ArgumentNullException.ThrowIfNull(words);
        foreach (var (n, what) in new[] { (train, nameof(train)), (validation, nameof(validation)), (test, nameof(test)) })
            if (n < 1) throw new ArgumentOutOfRangeException(what, n, "every split needs at least one example");

        var pools = words.Partition(seed, HeldFraction);
        foreach (var (pool, what) in new[] { (pools.Train, Evaluation.Suites.Suite.Train), (pools.Validation, Evaluation.Suites.Suite.Validation), (pools.Test, Evaluation.Suites.Suite.Test) })
            if (pool.Count < BundledTasks.MaxListLength)
                throw new InvalidOperationException(
                    $"the word list has {words.Count} words; its {what} part ({pool.Count}) needs at least {BundledTasks.MaxListLength} for the list tasks");

        var spec = Spec();
        foreach (var task in BundledTasks.All)
        {
            var splits = Generate(task, seed, pools, train, validation, test);
            string dataDir = Path.Combine(suiteDir, "data", task.Name);
            foreach (var (split, examples) in splits)
                SuiteWriter.WriteSplit(Path.Combine(dataDir, Evaluation.Suites.Suite.SplitFileName(split)), examples);
        }
        SuiteWriter.WriteSuiteYaml(suiteDir, spec);
        return Evaluation.Suites.Suite.Load(suiteDir);
    }

    /// <summary>One task's three splits (in memory), drawn as <see cref="Build"/> draws them.</summary>
    public static IReadOnlyList<(string Split, IReadOnlyList<Example> Examples)> Generate(ITaskGenerator task, int seed,
        (WordList Train, WordList Validation, WordList Test) pools, int train, int validation, int test)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<(string, IReadOnlyList<Example>)>();
        foreach (var (split, pool, count) in new[]
                 {
                     (Evaluation.Suites.Suite.Test, pools.Test, test),
                     (Evaluation.Suites.Suite.Validation, pools.Validation, validation),
                     (Evaluation.Suites.Suite.Train, pools.Train, train),
                 })
        {
            var rng = new Random(StableSeed.Of(seed, task.Name, split));
            var examples = new List<Example>(count);
            long maxDraws = 50L * count + 1000, draws = 0;
            while (examples.Count < count)
            {
                if (++draws > maxDraws)
                    throw new InvalidOperationException(
                        $"{task.Name}: only {examples.Count} distinct {split} inputs after {maxDraws} draws (asked for {count}); " +
                        "use a larger word list or fewer examples");
                var e = task.Generate(rng, pool);
                if (used.Add(e.Input)) examples.Add(e);
            }
            result.Add((split, examples));
        }
        // Files are listed train, validation, test.
        result.Reverse();
        return result;
    }
}
