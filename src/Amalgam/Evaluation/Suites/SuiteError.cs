namespace Amalgam.Evaluation.Suites;

/// <summary>
/// Builds the <see cref="InvalidDataException"/> (a sealed type) thrown for a suite file that cannot be used: one
/// line naming the file relative to the suite folder, the line (JSONL) and the field:
/// <c>suite.yaml: tasks[3].metric: unknown metric 'f1' (exact_match, option_accuracy)</c>,
/// <c>data/reverse_word/test.jsonl:17: missing "target"</c>.
/// </summary>
internal static class SuiteError
{
    public static InvalidDataException Create(string file, int? line, string message, Exception? inner = null) =>
        new(OneLine($"{file}{(line is int l ? $":{l}" : "")}: {message}"), inner);

    private static string OneLine(string message) =>
        message.Replace("\r\n", " ").Replace('\n', ' ').Replace('\r', ' ');
}
