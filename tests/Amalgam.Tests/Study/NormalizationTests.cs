using Amalgam.Strategies;
using Amalgam.Study;

namespace Amalgam.Tests.Study;

public class NormalizationTests
{
    static readonly List<StudyTask> Tasks = StudyFixture.Tasks;

    [Fact]
    public void HeldInIsTheMeanOfScoreOverExpertScore()
    {
        var perTask = new Dictionary<string, double> { ["a"] = 0.5, ["b"] = 0.4, ["c"] = 0.1, ["x"] = 0.2, ["y"] = 0.6 };
        // (0.5/1.0 + 0.4/0.8 + 0.1/0.5) / 3 = (0.5 + 0.5 + 0.2) / 3
        Assert.Equal(0.4, Normalization.HeldIn(perTask, Tasks, StudyFixture.Experts), 12);
        Assert.Equal(0.4, Normalization.HeldOut(perTask, Tasks)!.Value, 12);
    }

    [Fact]
    public void ATaskWhoseExpertScoresZeroIsSkippedAndNamed()
    {
        var experts = new Dictionary<string, double> { ["a"] = 1.0, ["b"] = 0.8, ["c"] = 0.0 };
        var perTask = new Dictionary<string, double> { ["a"] = 0.5, ["b"] = 0.4, ["c"] = 0.3 };
        Assert.Equal(0.5, Normalization.HeldIn(perTask, Tasks, experts), 12);
        Assert.Equal(["c"], Normalization.SkippedTasks(Tasks, experts));
        Assert.Empty(Normalization.SkippedTasks(Tasks, StudyFixture.Experts));
    }

    [Fact]
    public void ScoresAboveTheExpertGiveMoreThanOne()
    {
        var perTask = new Dictionary<string, double> { ["a"] = 1.0, ["b"] = 1.0, ["c"] = 1.0 };
        Assert.Equal((1 + 1.25 + 2) / 3, Normalization.HeldIn(perTask, Tasks, StudyFixture.Experts), 12);
    }

    [Fact]
    public void HeldOutIsNullWhenNoHeldOutTaskWasScored()
    {
        var perTask = new Dictionary<string, double> { ["a"] = 1.0, ["b"] = 1.0, ["c"] = 1.0 };
        Assert.Null(Normalization.HeldOut(perTask, Tasks));
    }

    [Fact]
    public void MissingScoresAndAllZeroExpertsAreRefused()
    {
        var noB = new Dictionary<string, double> { ["a"] = 1.0, ["c"] = 1.0 };
        Assert.Contains("'b'", Assert.Throws<ArgumentException>(() => Normalization.HeldIn(noB, Tasks, StudyFixture.Experts)).Message);
        var onlyX = new Dictionary<string, double> { ["x"] = 1.0 };
        Assert.Contains("'y'", Assert.Throws<ArgumentException>(() => Normalization.HeldOut(onlyX, Tasks)).Message);
        var zeros = new Dictionary<string, double> { ["a"] = 0, ["b"] = 0, ["c"] = 0 };
        Assert.Throws<ArgumentException>(() => Normalization.HeldIn(noB, Tasks, zeros));
    }

    [Fact]
    public void FillComputesBothMeans()
    {
        var s = StudyFixture.Strategy("r", StrategyFamily.Route, null, 1.5, 0.9, 0.7, 0.45, 0.3, 0.5);
        Assert.Equal((0.9 + 0.875 + 0.9) / 3, s.HeldInNormalized, 12);
        Assert.Equal(0.4, s.HeldOut!.Value, 12);
    }
}
