using System.CommandLine;
using Amalgam.Strategies;
using Amalgam.Study;
using Spectre.Console;

namespace Amalgam.Cli;

/// <summary><c>amalgam study</c>: the trade-off study — every way of combining the suite's experts, on quality and cost.</summary>
public static class StudyCommand
{
    /// <summary>
    /// Test examples per task by default: 30 of the bundled suite's 100, so that the whole study, a fresh build
    /// included, stays within 5 minutes on 2 cores (the output ensembles alone run 12 forwards per token).
    /// </summary>
    public const int DefaultLimit = 30;

    public static Command Create()
    {
        var suiteDir = new Option<string>("--suite") { Description = "Suite folder (suite.yaml).", DefaultValueFactory = _ => "suite" };
        var outDir = new Option<string>("--out") { Description = "Output folder: results.json, report.md, frontier.png, per_task.png.", DefaultValueFactory = _ => "study-out" };
        var strategies = new Option<string[]>("--strategies") { Description = "Strategy names or families (reference, ensemble, merge, route, select), comma-separated or repeated; default: all.", AllowMultipleArgumentsPerToken = true };
        var seed = new Option<int>("--seed") { Description = "Seed of routers, k-means and DARE.", DefaultValueFactory = _ => 0 };
        var quick = new Option<bool>("--quick") { Description = "A fast smoke run: 6 test examples per task and little fitting data (every strategy still runs)." };
        var limit = new Option<int>("--limit") { Description = "Score the first N test examples of each task; 0 = all (the default keeps the bundled study within 5 minutes on 2 cores).", DefaultValueFactory = _ => DefaultLimit };
        var export = new Option<string?>("--export") { Description = "Save every deployable strategy as a strategy folder under DIR (DIR/<name>, and DIR/recommended/<budget> for each budget's pick), to run with eval/generate --strategy." };
        var skip = new Option<string[]>("--skip") { Description = "Strategy names or families to leave out, comma-separated or repeated (unknown names are refused).", AllowMultipleArgumentsPerToken = true };
        var budget = new Option<string?>("--budget") { Description = "Cap the study's time (300, 90s, 5m, 1h30m): once spent, no further strategy starts; the report lists what was left out." };
        var bootstrap = new Option<int>("--bootstrap") { Description = "Paired bootstrap resamples behind every interval (0 = no intervals).", DefaultValueFactory = _ => StudyBootstrap.DefaultSamples };
        var command = new Command("study", "Compare ensembling, merging, routing and expert selection on a suite: scores, costs, Pareto frontier, recommendation.");
        foreach (var o in new Option[] { suiteDir, outDir, strategies, skip, seed, quick, limit, budget, bootstrap, export }) command.Options.Add(o);
        command.SetAction(CliErrors.Guard(parse =>
        {
            static List<string> Names(string[]? values) =>
                (values ?? []).SelectMany(s => s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
            var names = Names(parse.GetValue(strategies));
            var skipped = Names(parse.GetValue(skip));
            StudyCatalog.Skip(StudyCatalog.Select(names), skipped); // refuse unknown names before loading anything
            TimeSpan? cap = parse.GetValue(budget) is { } text
                ? StudyFormat.ParseDuration(text) ?? throw new ArgumentException($"--budget: '{text}' is not a positive duration (300, 90s, 5m, 1h30m)")
                : null;
            int samples = parse.GetValue(bootstrap);
            if (samples is < 0 or 1) throw new ArgumentException($"--bootstrap: must be 0 (no intervals) or at least 2, got {samples}");
            string suite = parse.GetValue(suiteDir)!, output = parse.GetValue(outDir)!;
            int s = parse.GetValue(seed);
            var options = parse.GetValue(quick)
                ? StudyOptions.Quick(suite, names, s)
                : new StudyOptions(suite, names, Fitting: new StrategyOptions(Seed: s));
            Tensors.OutputGuard.Check(output, [suite]); // before minutes of work, not after
            int n = parse.GetValue(limit);
            if (n < 0) throw new ArgumentException($"--limit: must be ≥ 0 (0 = all), got {n}");
            if (!parse.GetValue(quick)) options = options with { TestLimit = n == 0 ? null : n };
            options = options with { ExportDir = parse.GetValue(export), Skip = skipped, Budget = cap, BootstrapSamples = samples };
            if (options.ExportDir is { } e && IsInside(e, output))
                throw new ArgumentException($"--export: {e} lies inside --out {output}, which is replaced whole when the study ends; give a folder beside it");
            var results = StudyRunner.Run(options, ProgressDisplay.TimedLines());
            StudyOutputs.Write(results, output);
            PrintSummary(results, output, options.ExportDir);
            return 0;
        }));
        return command;
    }

    static bool IsInside(string path, string folder)
    {
        string p = Path.GetFullPath(path).TrimEnd('/') + "/", f = Path.GetFullPath(folder).TrimEnd('/') + "/";
        return p.StartsWith(f, StringComparison.Ordinal);
    }

    static void PrintSummary(StudyResults results, string output, string? exportDir)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;
        var frontier = ParetoFrontier.Compute(results).Select(p => p.Name).ToHashSet();
        var table = new Table().AddColumns("strategy", "family", "held-in (norm.)", "95% interval", "gap closed", "held-out", "rel. FLOPs", "tokens/s", "frontier");
        foreach (var r in results.Strategies)
            table.AddRow(Markup.Escape(r.Name), r.Family, StudyFormat.Score(r.HeldInNormalized), Markup.Escape(StudyFormat.Interval(r.HeldInInterval)),
                r.GapClosed is double g ? StudyFormat.Score(g) : "-", r.HeldOut is double h ? StudyFormat.Score(h) : "-",
                StudyFormat.Flops(r.RelativeFlops), StudyFormat.TokensPerSecond(r.TokensPerSecond), frontier.Contains(r.Name) ? "*" : "");
        table.Caption($"{results.Suite}: {results.Strategies.Count} strategies in {results.TotalSeconds:F0} s");
        AnsiConsole.Write(table);
        foreach (var pick in Recommendation.Compute(results))
            Console.WriteLine($"{pick.Budget.Name}: {pick.Best?.Name ?? "(none)"}");
        Console.WriteLine($"report: {Path.Combine(output, ReportWriter.FileName)}");
        if (exportDir is not null) Console.WriteLine($"strategies: {exportDir} (run one with: amalgam eval --strategy {Path.Combine(exportDir, "<name>")} --suite ...)");
    }
}
