using Amalgam.Evaluation;
using Amalgam.Evaluation.Suites;
using Amalgam.Models;
using Amalgam.Predictors;
using Amalgam.Runtime;
using Amalgam.Tokenizers;
using static TorchSharp.torch;

namespace Amalgam.Tests.Runtime;

public class TorchWorkersTests
{
    [Fact]
    public void Results_come_back_in_item_order_from_several_threads()
    {
        var items = Enumerable.Range(0, 200).ToList();
        var threads = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
        var results = TorchWorkers.Map(items, i =>
        {
            threads[Environment.CurrentManagedThreadId] = true;
            Thread.SpinWait(20_000);
            return i * i;
        }, workers: 3);
        Assert.Equal(items.Select(i => i * i), results);
        Assert.True(threads.Count > 1, $"ran on {threads.Count} thread(s)");
    }

    [Fact]
    public void One_worker_or_one_item_runs_inline()
    {
        int caller = Environment.CurrentManagedThreadId;
        Assert.All(TorchWorkers.Map(Enumerable.Range(0, 5).ToList(), _ => Environment.CurrentManagedThreadId, workers: 1), id => Assert.Equal(caller, id));
        Assert.Equal([caller], TorchWorkers.Map([7], _ => Environment.CurrentManagedThreadId, workers: 4));
    }

    [Fact]
    public void A_map_inside_a_worker_runs_inline_on_that_worker()
    {
        var pairs = TorchWorkers.Map(Enumerable.Range(0, 8).ToList(), _ =>
        {
            int outer = Environment.CurrentManagedThreadId;
            var inner = TorchWorkers.Map(Enumerable.Range(0, 4).ToList(), _ => Environment.CurrentManagedThreadId, workers: 4);
            return inner.All(id => id == outer);
        }, workers: 2);
        Assert.All(pairs, Assert.True);
    }

    [Fact]
    public void The_first_failure_in_item_order_is_rethrown_and_the_thread_count_restored()
    {
        int before = get_num_threads();
        var e = Assert.Throws<InvalidOperationException>(() => TorchWorkers.Map(Enumerable.Range(0, 40).ToList(), i =>
        {
            if (i is 3 or 5) throw new InvalidOperationException($"item {i}");
            Thread.SpinWait(10_000);
            return i;
        }, workers: 2));
        Assert.True(e.Message is "item 3" or "item 5", e.Message);
        Assert.Equal(before, get_num_threads());
    }

    [Fact]
    public void Workers_run_libtorch_single_threaded()
    {
        var counts = TorchWorkers.Map(Enumerable.Range(0, 6).ToList(), _ => { Thread.SpinWait(50_000); return get_num_threads(); }, workers: 2);
        Assert.All(counts, n => Assert.Equal(1, n));
    }

    [Fact]
    public void Evaluating_tasks_side_by_side_gives_the_serial_scores_exactly()
    {
        string suiteDir = Path.Combine(TestData.RepoRoot, "suite");
        var suite = Suite.Load(suiteDir);
        using var model = CheckpointLoader.Load(suite.BasePath);
        var tokenizer = TokenizerLoader.Load(suite.BasePath);
        var predictor = new ModelPredictor(model);
        var tasks = suite.Tasks.Take(5).ToList();
        var serial = tasks.Select(t => SuiteEvaluator.Evaluate(predictor, tokenizer, suite, t, Suite.Validation, 8)).ToList();
        var side = SuiteEvaluator.EvaluateAll(_ => predictor, tokenizer, suite, tasks, Suite.Validation, 8, workers: 2);
        Assert.Equal(serial.Select(e => e.Task), side.Select(e => e.Task));
        for (int i = 0; i < tasks.Count; i++)
        {
            Assert.Equal(serial[i].Answers, side[i].Answers);
            Assert.Equal(serial[i].ExampleScores, side[i].ExampleScores);
        }
    }
}
