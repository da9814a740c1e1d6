namespace Amalgam.Evaluation.Suites;

/// <summary>A loaded suite: every path absolute, resolved against the suite folder.</summary>
public sealed record SuiteDefinition(string Directory, string Name, string BasePath, string PromptFormat,
    IReadOnlyList<TaskDefinition> Tasks, SuiteSpec Spec)
{
    public TaskDefinition Task(string name) =>
        Tasks.FirstOrDefault(t => t.Name == name)
        ?? throw new ArgumentException($"{Suite.FileName}: no task '{name}' ({string.Join(", ", Tasks.Select(t => t.Name))})");

    public IEnumerable<TaskDefinition> HeldIn => Tasks.Where(t => !t.HeldOut);

    public IEnumerable<TaskDefinition> HeldOut => Tasks.Where(t => t.HeldOut);

    /// <summary>The base model's chat template when suite.yaml's <c>chat_template</c> asks for one.</summary>
    public Tokenizers.ChatTemplates.ChatTemplate? Chat { get; init; }

    /// <summary>
    /// The text the model sees before the target: <see cref="PromptFormat"/> with <c>{input}</c> replaced; with a
    /// chat template, that text as one user message rendered with the generation prompt. Every caller encodes the
    /// prompt with BOS, so a template's own leading BOS text is left out here (one BOS, as the template renders it).
    /// </summary>
    public string Prompt(Example e)
    {
        var text = Suite.Prompt(PromptFormat, e);
        if (Chat is null) return text;
        var rendered = Chat.Render([("user", text)], addGenerationPrompt: true);
        return Chat.BosToken is { Length: > 0 } bos && rendered.StartsWith(bos, StringComparison.Ordinal) ? rendered[bos.Length..] : rendered;
    }

    /// <summary>Reads one split of a task (<c>train</c>, <c>validation</c> or <c>test</c>).</summary>
    public IReadOnlyList<Example> LoadSplit(TaskDefinition task, string split) => Suite.LoadSplit(task, split);

    public IReadOnlyList<Example> LoadSplit(string task, string split) => Suite.LoadSplit(Task(task), split);
}

/// <summary>
/// One task of a loaded suite. <see cref="ExpertPath"/> is null for held-out tasks; <see cref="DataPath"/> is the
/// folder holding train.jsonl, validation.jsonl and test.jsonl; <see cref="SuiteDirectory"/> is used to name files
/// in error messages relative to the suite.
/// </summary>
public sealed record TaskDefinition(string Name, string Family, bool HeldOut, string Metric, string? ExpertPath,
    string DataPath, string SuiteDirectory)
{
    public string SplitPath(string split) => Path.Combine(DataPath, Suite.SplitFileName(split));
}
