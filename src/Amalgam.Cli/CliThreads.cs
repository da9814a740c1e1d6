using System.CommandLine;
using Amalgam.Runtime;

namespace Amalgam.Cli;

/// <summary>The global --threads option: libtorch's thread count, set once before a verb's body runs.</summary>
public static class CliThreads
{
    public static readonly Option<int?> Threads = new("--threads")
    {
        Description = "libtorch threads (default: OMP_NUM_THREADS, else the cores this process may use: affinity mask and cgroup quota).",
        Recursive = true,
    };

    public static void Apply(ParseResult parse)
    {
        var settings = TorchThreads.Configure(parse.GetValue(Threads));
        if (parse.GetValue(CliErrors.Verbose))
            Console.Error.WriteLine($"amalgam: {settings.IntraOp} threads ({settings.Source}), inter-op {settings.InterOp}, OMP_WAIT_POLICY={settings.WaitPolicy}{(settings.WaitPolicyBeforeLoad ? "" : " (set after libtorch loaded)")}");
    }
}
