using System.CommandLine;
using Amalgam.Cli;
using Amalgam.Runtime;

// Before anything can load libtorch: its OpenMP workers then sleep instead of spinning on shared cores.
TorchThreads.PreferPassiveWaiting();

var root = new RootCommand("Amalgam: combine LoRA experts that share one base model — ensemble, merge, route — and measure which to deploy.");
root.Options.Add(CliErrors.Verbose);
root.Options.Add(CliThreads.Threads);
root.Subcommands.Add(LogitsCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(MergeCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(SuiteCommand.Create());
root.Subcommands.Add(StudyCommand.Create());
root.Subcommands.Add(EnsembleCommand.Create());
root.Subcommands.Add(RouteCommand.Create());
root.Subcommands.Add(FitCommand.Create());
root.Subcommands.Add(SelectCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
var parsed = root.Parse(args);
// Option and argument errors follow the same one-line contract as every other error (the help action, when asked
// for, wins over them as before).
if (parsed.Errors.Count > 0 && parsed.Action is not System.CommandLine.Help.HelpAction)
{
    Console.Error.WriteLine($"amalgam: error: {CliErrors.Escaped(parsed.Errors[0].Message)}");
    return 1;
}
return parsed.Invoke();
