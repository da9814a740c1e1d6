using System.CommandLine;
using Amalgam.Strategies;
using Amalgam.Study;
using Spectre.Console;

namespace Amalgam.Cli;

/// <summary>
/// What the strategy verbs (ensemble, route, fit, select) share: the suite and run options, running their strategies
/// through the study runner on the test splits, a summary table, and the results written as JSON (the study's schema).
/// </summary>
public sealed class StrategyRun(string verb)
{
    public Option<string> Suite { get; } = new("--suite") { Description = "Suite folder (suite.yaml).", DefaultValueFactory = _ => "suite" };
    public Option<string> Out { get; } = new("--out") { Description = "Results JSON file (the study's results.json schema).", DefaultValueFactory = _ => $"{verb}-results.json" };
    public Option<int> Seed { get; } = new("--seed") { Description = "Seed of routers, k-means, DARE and searches.", DefaultValueFactory = _ => 0 };
    public Option<int?> Limit { get; } = new("--limit") { Description = "Score only the first N test examples of each task (default: all)." };
    public Option<bool> Quick { get; } = new("--quick") { Description = "Little fitting data and 6 test examples per task (a smoke run)." };
    public Option<string?> Save { get; } = new("--save") { Description = "Save each strategy as a strategy folder DIR/<name> (run it with eval/generate --strategy)." };

    public void AddTo(Command command)
    {
        CliErrors.Positive(Limit);
        foreach (var o in new Option[] { Suite, Out, Seed, Limit, Quick, Save }) command.Options.Add(o);
    }

    /// <summary>Runs the entries, prints the table, writes the JSON; returns the results.</summary>
    public StudyResults Run(ParseResult parse, IReadOnlyList<StudyCatalog.Entry> entries)
    {
        string suite = parse.GetValue(Suite)!;
        int seed = parse.GetValue(Seed);
        var options = parse.GetValue(Quick)
            ? StudyOptions.Quick(suite, null, seed) with { Entries = entries }
            : new StudyOptions(suite, Fitting: new StrategyOptions(Seed: seed), Entries: entries);
        if (parse.GetValue(Limit) is int n) options = options with { TestLimit = n };
        options = options with { ExportDir = parse.GetValue(Save) };
        var results = StudyRunner.Run(options, ProgressDisplay.TimedLines());
        StudyResultsFile.Save(results, parse.GetValue(Out)!);
        Print(results);
        Console.WriteLine($"results: {parse.GetValue(Out)}");
        return results;
    }

    public static void Print(StudyResults results)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        var table = new Table().AddColumns(["strategy", "held-in (norm.)", "held-out", "rel. FLOPs", "tokens/s", "fit s", .. results.Tasks.Select(t => Markup.Escape(t.Name))]);
        foreach (var r in results.Strategies)
            table.AddRow([Markup.Escape(r.Name), StudyFormat.Score(r.HeldInNormalized), StudyFormat.Score(r.HeldOut), StudyFormat.Flops(r.RelativeFlops),
                StudyFormat.TokensPerSecond(r.TokensPerSecond), StudyFormat.Seconds(r.FitSeconds),
                .. results.Tasks.Select(t => r.PerTask.TryGetValue(t.Name, out var v) ? StudyFormat.Score(v) : "-")]);
        table.Caption($"{results.Suite}, test split, {results.TotalSeconds:F0} s");
        AnsiConsole.Write(table);
    }

    /// <summary>A comma-separated or repeated list option's values.</summary>
    public static List<string> Values(ParseResult parse, Option<string[]> option) =>
        (parse.GetValue(option) ?? []).SelectMany(s => s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();

    /// <summary>Parses a choice, naming the option and the choices when it is not one.</summary>
    public static T Choice<T>(string option, string value, IReadOnlyDictionary<string, T> choices) =>
        choices.TryGetValue(value, out var v) ? v : throw new ArgumentException($"{option}: '{value}' is not one of {string.Join(", ", choices.Keys)}");
}
