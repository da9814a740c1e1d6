using System.CommandLine;

namespace Amalgam.Cli;

/// <summary>
/// The CLI's error contract: one line on stderr naming what is wrong, exit code 1; the stack trace only with --verbose.
/// </summary>
public static class CliErrors
{
    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Print stack traces with errors.", Recursive = true };

    /// <summary>Wraps a verb's body so every failure becomes the one-line error.</summary>
    public static Func<ParseResult, int> Guard(Func<ParseResult, int> body) => parse =>
    {
        try
        {
            CliThreads.Apply(parse);
            return body(parse);
        }
        catch (Exception e)
        {
            var cause = e is TypeInitializationException { InnerException: { } inner } ? inner : e;
            Console.Error.WriteLine($"amalgam: error: {OneLine(cause.Message)}");
            if (parse.GetValue(Verbose)) Console.Error.WriteLine(e);
            return 1;
        }
    };

    public static string OneLine(string message)
    {
        var line = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "unknown error";
        return line;
    }
}
