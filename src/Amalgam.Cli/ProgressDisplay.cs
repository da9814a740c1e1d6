using Amalgam.Bundled;
using Amalgam.Training;
using Spectre.Console;

namespace Amalgam.Cli;

/// <summary>
/// Progress of long work on stderr: Spectre progress bars on an interactive terminal; when output is redirected,
/// one line per stage and a loss line every tenth of a training run.
/// </summary>
public static class ProgressDisplay
{
    public static T Run<T>(Func<ISuiteBuildProgress, T> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        if (Console.IsErrorRedirected || !console.Profile.Capabilities.Interactive) return work(new Lines());
        return console.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx => work(new Bars(ctx)));
    }

    static string Describe(string name, TrainingStep s) => $"{name}: step {s.Step}/{s.Steps} loss {s.Loss:F4} lr {s.LearningRate:G3}";

    sealed class Lines : ISuiteBuildProgress
    {
        public void Stage(string message) => Console.Error.WriteLine(message);

        public IProgress<TrainingStep> Training(string name, int steps) => new Progress<TrainingStep>(s =>
        {
            if (s.Step == 1 || s.Step == s.Steps || s.Step % Math.Max(1, s.Steps / 10) == 0) Console.Error.WriteLine(Describe(name, s));
        });
    }

    sealed class Bars(ProgressContext ctx) : ISuiteBuildProgress
    {
        public void Stage(string message) => AnsiConsole.Console.Profile.Out.Writer.Flush();

        public IProgress<TrainingStep> Training(string name, int steps)
        {
            var task = ctx.AddTask(Markup.Escape(name), maxValue: steps);
            return new Progress<TrainingStep>(s =>
            {
                task.Value = s.Step;
                task.Description = Markup.Escape(Describe(name, s));
            });
        }
    }

    /// <summary>Stage lines on stderr, each prefixed with the time elapsed since this call (mm:ss).</summary>
    public static IProgress<string> TimedLines()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        return new Progress<string>(m => Console.Error.WriteLine($"[{clock.Elapsed:mm\\:ss}] {m}"));
    }

    /// <summary>A synchronous IProgress (System.Progress posts to the thread pool, which would reorder lines).</summary>
    sealed class Progress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
