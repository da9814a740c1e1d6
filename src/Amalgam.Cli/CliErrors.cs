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
            Console.Error.WriteLine($"amalgam: error: {Escaped(cause.Message)}");
            if (parse.GetValue(Verbose)) Console.Error.WriteLine(e);
            return 1;
        }
    };

    /// <summary>The first line of a message, with control characters from file names and tensor names escaped.</summary>
    public static string Escaped(string message) => Inputs.Names.Escape(OneLine(message));

    /// <summary>Counts must be at least 1: refused while parsing, naming the option.</summary>
    public static void Positive(Option<int?> option) => option.Validators.Add(r =>
    {
        if (r.GetValueOrDefault<int?>() is int n && n < 1) r.AddError($"{option.Name}: must be at least 1, got {n}");
    });

    public static string OneLine(string message)
    {
        var line = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "unknown error";
        return line;
    }
}
