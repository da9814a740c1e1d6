namespace Amalgam.Evaluation.Metrics;

/// <summary>
/// A task's score: the mean of its per-example scores (each 0 or 1 for the metrics here) and how many examples
/// it averages. A task with no examples has <see cref="Count"/> 0 and a NaN mean.
/// </summary>
public readonly record struct TaskScore(double Mean, int Count)
{
    public static TaskScore Empty => new(double.NaN, 0);

    public static TaskScore Of(IEnumerable<double> exampleScores)
    {
        ArgumentNullException.ThrowIfNull(exampleScores);
        double sum = 0;
        int count = 0;
        foreach (var s in exampleScores)
        {
            if (double.IsNaN(s)) throw new ArgumentException($"example {count} has a NaN score", nameof(exampleScores));
            sum += s;
            count++;
        }
        return count == 0 ? Empty : new TaskScore(sum / count, count);
    }

    public override string ToString() => Count == 0 ? "n/a (0 examples)" : $"{Mean:0.0000} ({Count} examples)";
}
