using System.CommandLine;
using Amalgam.Bundled;

namespace Amalgam.Cli;

/// <summary><c>amalgam suite build</c>: regenerates the bundled suite (data, base, experts, quality report) from seeds.</summary>
public static class SuiteCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Suite folder to (re)write; replaced only when complete.", DefaultValueFactory = _ => "suite" };
        var seed = new Option<int>("--seed") { Description = "Seed of data, base and experts.", DefaultValueFactory = _ => new SuiteBuildOptions().Seed };
        var words = new Option<string?>("--words") { Description = "Word list (default /usr/share/dict/american-english, Debian's wamerican)." };
        var quick = new Option<bool>("--quick") { Description = "A tiny suite in seconds, for tests (quality not meaningful)." };
        var build = new Command("build", "Regenerate the whole suite: task data, a base trained from scratch, one LoRA expert per held-in task, measured quality.");
        foreach (var o in new Option[] { output, seed, words, quick }) build.Options.Add(o);
        build.SetAction(CliErrors.Guard(parse =>
        {
            var options = (parse.GetValue(quick) ? SuiteBuildOptions.Quick : new SuiteBuildOptions()) with
            {
                Seed = parse.GetValue(seed),
                WordListPath = parse.GetValue(words),
            };
            string dir = parse.GetValue(output)!;
            ProgressDisplay.Run(p => { SuiteBuilder.Build(dir, options, p); return 0; });
            Console.WriteLine($"wrote {dir}; quality in {Path.Combine(dir, "README.md")}");
            return 0;
        }));
        var suite = new Command("suite", "The bundled expert suite.");
        suite.Subcommands.Add(build);
        return suite;
    }
}
