using Amalgam.Study;

namespace Amalgam.Tests.Study;

public class ParetoFrontierTests
{
    static readonly FrontierPoint[] Points =
    [
        new("A", 1, 0.5), new("B", 1, 0.6), new("C", 2, 0.6), new("D", 0.5, 0.2),
        new("E", 3, 0.9), new("F", 3, 0.9), new("G", 2, 0.7), new("H", 4, 0.9),
    ];

    [Fact]
    public void KeepsTheNonDominatedSortedByCost()
    {
        var frontier = ParetoFrontier.Compute(Points);
        // A loses to B (same cost), C to G, H to E and F (same score, cheaper); E and F tie exactly and both stay.
        Assert.Equal(["D", "B", "G", "E", "F"], frontier.Select(p => p.Name));
    }

    [Fact]
    public void OrderOfInputDoesNotMatter()
    {
        var expected = ParetoFrontier.Compute(Points).Select(p => p.Name).ToList();
        var rng = new Random(1);
        for (int i = 0; i < 20; i++)
            Assert.Equal(expected, ParetoFrontier.Compute(Points.OrderBy(_ => rng.Next()).ToArray()).Select(p => p.Name));
    }

    [Fact]
    public void AgreesWithTheDefinitionOnRandomPoints()
    {
        var rng = new Random(5);
        for (int trial = 0; trial < 50; trial++)
        {
            // coarse grid so that ties in cost, score and both are common
            var pts = Enumerable.Range(0, 40).Select(i => new FrontierPoint($"p{i}", rng.Next(1, 8), rng.Next(0, 6) / 5.0)).ToList();
            bool Dominated(FrontierPoint p) => pts.Any(q => q.Cost <= p.Cost && q.Score >= p.Score && (q.Cost < p.Cost || q.Score > p.Score));
            var expected = pts.Where(p => !Dominated(p)).Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal);
            Assert.Equal(expected, ParetoFrontier.Compute(pts).Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal));
        }
    }

    [Fact]
    public void EmptyAndNonFiniteInputs()
    {
        Assert.Empty(ParetoFrontier.Compute(Array.Empty<FrontierPoint>()));
        Assert.Contains("'bad'", Assert.Throws<ArgumentException>(() => ParetoFrontier.Compute([new FrontierPoint("bad", double.NaN, 1)])).Message);
    }

    [Fact]
    public void TheStudysFrontier()
    {
        var frontier = ParetoFrontier.Compute(StudyFixture.Results());
        // Deployable only: at 1.0× greedy selection (0.783) beats base and the merges; the router (1.5×, 0.892) the
        // ensembles (3×); the oracle (1.000 at 1.0×) would hide them all but is not deployable.
        Assert.Equal(["select-greedy", "router-mlp"], frontier.Select(p => p.Name));
    }
}
