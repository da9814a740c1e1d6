using Amalgam.Selection;

namespace Amalgam.Tests.Selection;

public class GreedySelectionTests
{
    [Fact]
    public void Greedy_soup_keeps_candidates_that_do_not_hurt_in_order_of_individual_score()
    {
        double[] individual = [0.5, 0.9, 0.7, 0.8, 0.6, 0.3];
        var good = new HashSet<int> { 1, 3, 4 };
        var bad = new HashSet<int> { 2, 5 };                      // candidate 0 is neutral: ties are kept
        var calls = new List<int[]>();
        double Soup(IReadOnlyList<int> s) { calls.Add(s.ToArray()); return s.Count(good.Contains) - 2.0 * s.Count(bad.Contains); }
        var result = GreedySoup.Select(individual, Soup);
        Assert.Equal([1, 3, 4, 0], result.Chosen);
        Assert.Equal(3, result.Score);
        SoupStep[] expected =
        [
            new(1, 0.9, 1, true), new(3, 0.8, 2, true), new(2, 0.7, 0, false),
            new(4, 0.6, 3, true), new(0, 0.5, 3, true), new(5, 0.3, 1, false),
        ];
        Assert.Equal(expected, result.Trace);
        Assert.Equal(6, calls.Count);
        Assert.All(calls, c => Assert.Equal(c.Order(), c));      // sets arrive ascending
        Assert.Equal([0, 1, 3, 4, 5], calls[^1]);
    }

    [Fact]
    public void Greedy_soup_of_one_candidate_is_that_candidate()
    {
        var result = GreedySoup.Select([0.4], s => 7);
        Assert.Equal([0], result.Chosen);
        Assert.Single(result.Trace);
        Assert.Throws<ArgumentException>(() => GreedySoup.Select([], s => 0));
    }

    /// <summary>Examples covered by each expert; the oracle routed score of a set is the fraction covered by any member.</summary>
    static readonly int[][] Covers = [[0, 1, 2, 3], [0, 1, 2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9], []];
    static double Coverage(IReadOnlyList<int> set) => set.SelectMany(e => Covers[e]).Distinct().Count() / 10.0;

    [Fact]
    public void Greedy_routing_subset_finds_the_planted_smallest_set()
    {
        var result = GreedyRoutingSubset.Select(5, Coverage, tolerance: 0);
        Assert.Equal([1, 3], result.Chosen);
        Assert.Equal(1.0, result.Score);
        Assert.Equal(1.0, result.FullScore);
        Assert.Equal(2, result.Trace.Count);
        Assert.Equal(1, result.Trace[0].Added);
        Assert.Equal(0.6, result.Trace[0].Score);
        Assert.Equal([1], result.Trace[0].Set);
        Assert.Equal(3, result.Trace[1].Added);
        Assert.Equal([1, 3], result.Trace[1].Set);
        Assert.Equal(1.0, result.Trace[1].Score);
        Assert.Equal(1 + 5 + 4, result.Evaluations);

        var loose = GreedyRoutingSubset.Select(5, Coverage, tolerance: 0.45);
        Assert.Equal([1], loose.Chosen);
        Assert.Equal(0.55, loose.Target, 12);
    }

    [Fact]
    public void Routed_top1_score_takes_the_subsets_most_probable_expert_per_example()
    {
        double[,] correct = { { 1, 0, 0 }, { 0, 1, 1 }, { 0, 0, 1 }, { 0, 1, 0 } };
        double[,] probs = { { 0.5, 0.3, 0.2 }, { 0.6, 0.1, 0.3 }, { 0.2, 0.5, 0.3 }, { 0.4, 0.4, 0.2 } };
        var score = GreedyRoutingSubset.RoutedTop1Score(correct, probs);
        Assert.Equal(1 / 4.0, score([0, 1, 2]));  // picks 0, 0, 1, 0 (tie → lowest index)
        Assert.Equal(2 / 4.0, score([1, 2]));     // picks 1, 2, 1, 1
        Assert.Equal(2 / 4.0, score([2]));
        Assert.Equal(2 / 4.0, score([2, 0]));     // picks 0, 0, 2, 0
        Assert.Equal(1 / 4.0, score([0, 1]));     // picks 0, 0, 1, 0
        Assert.Throws<ArgumentException>(() => score([]));
        Assert.Throws<ArgumentException>(() => score([3]));
        Assert.Throws<ArgumentException>(() => GreedyRoutingSubset.RoutedTop1Score(correct, new double[4, 2]));
    }
}
