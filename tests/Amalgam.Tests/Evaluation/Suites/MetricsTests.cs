using Amalgam.Evaluation.Metrics;

namespace Amalgam.Tests.Evaluation.Suites;

public class MetricsTests
{
    [Theory]
    [InlineData("olleh", "olleh", 1.0)]
    [InlineData("  olleh\n", "olleh", 1.0)]     // surrounding white space is ignored ...
    [InlineData("olleh", " olleh\t", 1.0)]      // ... on both sides
    [InlineData("Olleh", "olleh", 0.0)]         // case counts
    [InlineData("ol leh", "olleh", 0.0)]        // inner spaces count
    [InlineData("olleh.", "olleh", 0.0)]        // punctuation counts
    [InlineData("", "a", 0.0)]
    [InlineData("   ", "", 1.0)]
    [InlineData("cat cat", "cat cat", 1.0)]
    public void ExactMatch_TrimsSurroundingWhiteSpaceOnly(string generated, string target, double expected) =>
        Assert.Equal(expected, ExactMatch.Score(generated, target));

    [Theory]
    [InlineData(new[] { -1.0, -2.0 }, 0, 1.0)]
    [InlineData(new[] { -1.0, -2.0 }, 1, 0.0)]
    [InlineData(new[] { -5.0, -0.5, -3.0 }, 1, 1.0)]
    [InlineData(new[] { -5.0, -0.5, -3.0 }, 2, 0.0)]
    [InlineData(new[] { -1.0, -1.0 }, 0, 0.0)]   // a tie is wrong, whichever index the target has
    [InlineData(new[] { -1.0, -1.0 }, 1, 0.0)]
    [InlineData(new[] { double.NegativeInfinity, -30.0 }, 1, 1.0)]
    public void OptionAccuracy_TargetMustStrictlyWin(double[] logLikelihoods, int target, double expected) =>
        Assert.Equal(expected, OptionAccuracy.Score(logLikelihoods, target));

    [Fact]
    public void OptionAccuracy_RejectsBadArguments()
    {
        Assert.Throws<ArgumentException>(() => OptionAccuracy.Score([-1.0], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => OptionAccuracy.Score([-1.0, -2.0], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => OptionAccuracy.Score([-1.0, -2.0], -1));
        Assert.Throws<ArgumentException>(() => OptionAccuracy.Score([double.NaN, -2.0], 1));
    }

    [Fact]
    public void OptionAccuracy_TargetIndex()
    {
        Assert.Equal(1, OptionAccuracy.TargetIndex(["17", "912"], "912"));
        Assert.Throws<ArgumentException>(() => OptionAccuracy.TargetIndex(["17", "912"], "9"));
    }

    [Fact]
    public void TaskScore_MeanAndCount()
    {
        Assert.Equal(new TaskScore(0.75, 4), TaskScore.Of([1, 1, 0, 1]));
        Assert.Equal(new TaskScore(1.0, 1), TaskScore.Of([1]));
        var empty = TaskScore.Of([]);
        Assert.Equal(0, empty.Count);
        Assert.True(double.IsNaN(empty.Mean));
        Assert.Throws<ArgumentException>(() => TaskScore.Of([1, double.NaN]));
        Assert.Equal("0.7500 (4 examples)", TaskScore.Of([1, 1, 0, 1]).ToString());
    }

    [Fact]
    public void MetricNames_AreTheTwoKnown()
    {
        Assert.Equal(["exact_match", "option_accuracy"], MetricNames.All);
        Assert.True(MetricNames.IsKnown("exact_match"));
        Assert.False(MetricNames.IsKnown("f1"));
    }
}
