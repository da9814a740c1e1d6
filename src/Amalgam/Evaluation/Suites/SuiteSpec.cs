using Amalgam.Evaluation.Metrics;

namespace Amalgam.Evaluation.Suites;

/// <summary>
/// suite.yaml as written: paths relative to the suite folder. <see cref="SuiteWriter"/> writes one,
/// <see cref="Suite.Load"/> reads one back (with defaults filled in) into a <see cref="SuiteDefinition"/>.
/// </summary>
public sealed record SuiteSpec(string Name, string Base, IReadOnlyList<TaskSpec> Tasks, string PromptFormat = SuiteSpec.DefaultPromptFormat)
{
    /// <summary>The text the model sees before the target; <c>{input}</c> is replaced by the example's input.</summary>
    public const string DefaultPromptFormat = "{input}\nAnswer: ";

    public const string InputPlaceholder = "{input}";

    /// <summary>
    /// Null: prompts are <see cref="PromptFormat"/> as it is. Otherwise the formatted prompt is sent as one user
    /// message through the base model's chat template (with its generation prompt): <c>default</c> for the model's
    /// own template, or the name of one of several named templates in its tokenizer_config.json.
    /// </summary>
    public string? ChatTemplate { get; init; }
}

/// <summary>One task of suite.yaml. <see cref="Data"/> null means the default <c>data/&lt;name&gt;</c>.</summary>
public sealed record TaskSpec(string Name, string Family, bool HeldOut, string Metric, string? Expert, string? Data = null)
{
    public string DataOrDefault => Data ?? $"data/{Name}";
}

/// <summary>The rules suite.yaml must satisfy beyond its field types; shared by the loader and the writer.</summary>
internal static class SuiteRules
{
    public static readonly string[] TopFields = ["name", "base", "prompt_format", "chat_template", "tasks"];
    public static readonly string[] TaskFields = ["name", "family", "held_out", "metric", "expert", "data"];

    /// <summary>The first problem as (field path, message), or null.</summary>
    public static (string Field, string Message)? Check(SuiteSpec spec)
    {
        if (string.IsNullOrWhiteSpace(spec.Name)) return ("name", "must not be empty");
        if (string.IsNullOrWhiteSpace(spec.Base)) return ("base", "must not be empty");
        if (spec.PromptFormat is null || !spec.PromptFormat.Contains(SuiteSpec.InputPlaceholder, StringComparison.Ordinal))
            return ("prompt_format", $"must contain {SuiteSpec.InputPlaceholder}");
        if (spec.Tasks is null || spec.Tasks.Count == 0) return ("tasks", "must list at least one task");

        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < spec.Tasks.Count; i++)
        {
            var t = spec.Tasks[i];
            string at = $"tasks[{i}]";
            if (t is null) return (at, "is empty");
            if (string.IsNullOrEmpty(t.Name)) return ($"{at}.name", "must not be empty");
            if (!IsSimpleName(t.Name))
                return ($"{at}.name", $"'{t.Name}' must use only letters, digits, '_' and '-' (it names a folder)");
            if (!seen.TryAdd(t.Name, i)) return ($"{at}.name", $"duplicate task name '{t.Name}' (also tasks[{seen[t.Name]}])");
            if (string.IsNullOrWhiteSpace(t.Family)) return ($"{at}.family", "must not be empty");
            if (t.Metric is null || !MetricNames.IsKnown(t.Metric))
                return ($"{at}.metric", $"unknown metric '{t.Metric}' ({string.Join(", ", MetricNames.All)})");
            if (t.HeldOut && t.Expert is not null)
                return ($"{at}.expert", $"held-out task '{t.Name}' must not have an expert (got '{t.Expert}')");
            if (!t.HeldOut && string.IsNullOrWhiteSpace(t.Expert))
                return ($"{at}.expert", $"held-in task '{t.Name}' needs an expert path");
            if (t.Data is not null && string.IsNullOrWhiteSpace(t.Data)) return ($"{at}.data", "must not be empty");
        }
        return null;
    }

    private static bool IsSimpleName(string s) => s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');
}
