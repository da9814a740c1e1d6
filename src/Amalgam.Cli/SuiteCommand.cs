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
        var variant = new Option<string>("--variant")
        {
            Description = "scratch (default, what suite/ holds): the from-scratch base alone; instruct: the from-scratch base, then instruction-tuned on one phrasing of each held-in task (not yet bundled).",
            DefaultValueFactory = _ => "scratch",
        };
        variant.AcceptOnlyFromAmong("instruct", "scratch");
        var baseFrom = new Option<string?>("--base-from") { Description = "instruct: start the instruction stage from this from-scratch base (built with the same seed and words, e.g. by --variant scratch) instead of training it again." };
        var tunedBase = new Option<string?>("--tuned-base") { Description = "instruct: reuse this instruction-tuned base (built by this recipe with the same seed and words) as is; only the experts are trained." };
        var jobs = new Option<int>("--jobs") { Description = "Experts trained at the same time, each on its own copy of the base (results do not depend on it).", DefaultValueFactory = _ => 1 };
        var instructionSteps = new Option<int?>("--instruction-steps") { Description = "Override the instruction stage's steps (trial builds)." };
        var expertSteps = new Option<int?>("--expert-steps") { Description = "Override each expert's training steps (trial builds)." };
        var instructionExamples = new Option<int?>("--instruction-examples") { Description = "instruct: override the training examples of each held-in task in the instruction mixture (trial builds)." };
        var build = new Command("build", "Regenerate the whole suite: task data, a base trained from scratch, one LoRA expert per held-in task, measured quality.");
        foreach (var o in new Option[] { output, seed, words, quick, variant, baseFrom, tunedBase, jobs, instructionSteps, expertSteps, instructionExamples }) build.Options.Add(o);
        build.SetAction(CliErrors.Guard(parse =>
        {
            var v = parse.GetValue(variant) == "scratch" ? SuiteVariant.Scratch : SuiteVariant.Instruct;
            var options = (parse.GetValue(quick) ? SuiteBuildOptions.Quick : SuiteBuildOptions.For(v)) with
            {
                Seed = parse.GetValue(seed),
                WordListPath = parse.GetValue(words),
                Variant = v,
                PretrainedBase = parse.GetValue(baseFrom),
                TunedBase = parse.GetValue(tunedBase),
                ExpertJobs = parse.GetValue(jobs),
            };
            if (options.ExpertJobs < 1) throw new ArgumentException($"--jobs: must be at least 1, got {options.ExpertJobs}");
            if (options.Variant == SuiteVariant.Scratch && (options.PretrainedBase ?? options.TunedBase) is not null)
                throw new ArgumentException($"{(options.PretrainedBase is null ? "--tuned-base" : "--base-from")}: only the instruct variant starts from an existing base");
            if (options.PretrainedBase is not null && options.TunedBase is not null)
                throw new ArgumentException("--tuned-base: give either --base-from (a from-scratch base to tune) or --tuned-base (a tuned one), not both");
            if (parse.GetValue(instructionSteps) is int i) options = options with { Instruction = options.Instruction with { Steps = i, WarmupSteps = Math.Min(options.Instruction.WarmupSteps, i) } };
            if (parse.GetValue(instructionExamples) is int x)
            {
                if (x < 1) throw new ArgumentException($"--instruction-examples: must be at least 1, got {x}");
                options = options with { InstructionExamplesPerTask = x };
            }
            if (parse.GetValue(expertSteps) is int e) options = options with { Expert = options.Expert with { Steps = e, WarmupSteps = Math.Min(options.Expert.WarmupSteps, e) } };
            string dir = parse.GetValue(output)!;
            Tensors.OutputGuard.Check(dir, [options.PretrainedBase, options.TunedBase]);
            ProgressDisplay.Run(p => { SuiteBuilder.Build(dir, options, p); return 0; });
            Console.WriteLine($"wrote {dir}; quality in {Path.Combine(dir, "README.md")}");
            return 0;
        }));
        var suite = new Command("suite", "The bundled expert suite.");
        suite.Subcommands.Add(build);
        return suite;
    }
}
