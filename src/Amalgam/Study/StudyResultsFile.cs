using Amalgam.Strategies;
using System.Text.Json;
using System.Text.Json.Serialization;
using Amalgam.Tensors;

namespace Amalgam.Study;

/// <summary>
/// <c>results.json</c>: written atomically, read back with every field checked, errors one line naming the file and
/// the field (<c>strategies[3] 'ties-fitted'.relative_flops: ...</c>). Saving validates too, so an inconsistent
/// study is never written.
/// </summary>
public static class StudyResultsFile
{
    public const string FileName = "results.json";

    /// <summary>Serializer options: indented, unknown fields refused (a typo must not vanish silently).</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>Tolerance for stored held-in / held-out means against the ones recomputed from per_task.</summary>
    public const double MeanTolerance = 1e-9;

    public static string ToJson(StudyResults results) => JsonSerializer.Serialize(results, Options);

    /// <summary>Validates, then writes <paramref name="path"/> (a file, or a folder that gets results.json) atomically.</summary>
    public static string Save(StudyResults results, string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, FileName) : path;
        Validate(results, file);
        AtomicFile.WriteAllText(file, ToJson(results) + "\n");
        return file;
    }

    /// <summary>Reads and validates <paramref name="path"/> (a file, or a folder holding results.json).</summary>
    public static StudyResults Load(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, FileName) : path;
        if (!File.Exists(file)) throw new FileNotFoundException($"{file}: not found (is this a study output folder?)", file);
        return Parse(File.ReadAllText(file), file);
    }

    public static StudyResults Parse(string json, string shownAs = FileName)
    {
        StudyResults? results;
        try
        {
            results = JsonSerializer.Deserialize<StudyResults>(json, Options);
        }
        catch (JsonException e)
        {
            string at = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "" : $" at '{e.Path.TrimStart('$', '.')}'";
            throw new InvalidDataException($"{shownAs}: invalid JSON or field type{at}: {e.Message.Split('\n')[0].Trim()}");
        }
        if (results is null) throw new InvalidDataException($"{shownAs}: empty file");
        Validate(results, shownAs);
        return results;
    }

    /// <summary>Every rule of docs/study.md's schema; throws InvalidDataException naming the file and field.</summary>
    public static void Validate(StudyResults r, string shownAs = FileName)
    {
        InvalidDataException Error(string field, string message) => new($"{shownAs}: {field}: {message}");

        if (r.SchemaVersion != StudyResults.CurrentSchemaVersion)
            throw Error("schema_version", $"{r.SchemaVersion} is not supported (this build reads {StudyResults.CurrentSchemaVersion})");
        if (string.IsNullOrWhiteSpace(r.Suite)) throw Error("suite", "missing");
        if (r.Tasks is null || r.Tasks.Count == 0) throw Error("tasks", "no tasks");
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < r.Tasks.Count; i++)
        {
            var t = r.Tasks[i];
            if (t is null || string.IsNullOrWhiteSpace(t.Name)) throw Error($"tasks[{i}].name", "missing");
            if (!names.Add(t.Name)) throw Error($"tasks[{i}].name", $"'{t.Name}' appears twice");
            if (string.IsNullOrWhiteSpace(t.Metric)) throw Error($"tasks[{i}] '{t.Name}'.metric", "missing");
        }
        if (!r.Tasks.Any(t => !t.HeldOut)) throw Error("tasks", "no held-in task");

        if (r.ExpertScores is null) throw Error("expert_scores", "missing");
        foreach (var (task, score) in r.ExpertScores)
        {
            var t = r.Tasks.FirstOrDefault(x => x.Name == task) ?? throw Error($"expert_scores.{task}", "not a task of the study");
            if (t.HeldOut) throw Error($"expert_scores.{task}", "is a held-out task (held-out tasks have no expert)");
            CheckScore(score, $"expert_scores.{task}");
        }
        foreach (var t in r.HeldInTasks)
            if (!r.ExpertScores.ContainsKey(t.Name)) throw Error($"expert_scores.{t.Name}", "missing (every held-in task needs its expert's score)");
        if (Normalization.SkippedTasks(r.Tasks, r.ExpertScores).Count == r.HeldInTasks.Count())
            throw Error("expert_scores", "every expert scores 0, so the normalised score is undefined");

        if (r.BaseModel is null) throw Error("base_model", "missing");
        if (!(r.BaseModel.FlopsPerExample > 0 && double.IsFinite(r.BaseModel.FlopsPerExample)))
            throw Error("base_model.flops_per_example", $"must be positive, got {r.BaseModel.FlopsPerExample}");
        if (r.BaseModel.Parameters < 0) throw Error("base_model.parameters", $"must not be negative, got {r.BaseModel.Parameters}");
        NonNegative(r.BaseModel.PromptTokens, "base_model.prompt_tokens");
        NonNegative(r.BaseModel.AnswerTokens, "base_model.answer_tokens");
        NonNegative(r.BaseModel.TokensPerSecond, "base_model.tokens_per_second");
        if (r.Machine is null) throw Error("machine", "missing");
        if (r.Machine.Cores <= 0) throw Error("machine.cores", $"must be positive, got {r.Machine.Cores}");
        NonNegative(r.TotalSeconds, "total_seconds");
        if (r.CreatedAt == default) throw Error("created_at", "missing");

        if (r.Strategies is null || r.Strategies.Count == 0) throw Error("strategies", "no strategies");
        var strategyNames = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < r.Strategies.Count; i++)
        {
            var s = r.Strategies[i];
            if (s is null || string.IsNullOrWhiteSpace(s.Name)) throw Error($"strategies[{i}].name", "missing");
            string at = $"strategies[{i}] '{s.Name}'";
            if (!strategyNames.Add(s.Name)) throw Error($"{at}.name", "appears twice");
            if (!StrategyFamily.All.Contains(s.Family))
                throw Error($"{at}.family", $"'{s.Family}' is not one of {string.Join(", ", StrategyFamily.All)}");
            if (s.PerTask is null) throw Error($"{at}.per_task", "missing");
            foreach (var (task, score) in s.PerTask)
            {
                if (!names.Contains(task)) throw Error($"{at}.per_task.{task}", "not a task of the study");
                CheckScore(score, $"{at}.per_task.{task}");
            }
            double heldIn;
            double? heldOut;
            try
            {
                heldIn = Normalization.HeldIn(s.PerTask, r.Tasks, r.ExpertScores);
                heldOut = Normalization.HeldOut(s.PerTask, r.Tasks);
            }
            catch (ArgumentException e)
            {
                throw Error(at, e.Message.Split(" (Parameter")[0]);
            }
            if (!double.IsFinite(s.HeldInNormalized) || Math.Abs(s.HeldInNormalized - heldIn) > MeanTolerance)
                throw Error($"{at}.held_in_normalized", $"{s.HeldInNormalized} disagrees with per_task, which gives {heldIn}");
            if (heldOut is null != s.HeldOut is null || (heldOut is double h && Math.Abs(h - s.HeldOut!.Value) > MeanTolerance))
                throw Error($"{at}.held_out", $"{Show(s.HeldOut)} disagrees with per_task, which gives {Show(heldOut)}");
            if (!(s.RelativeFlops > 0 && double.IsFinite(s.RelativeFlops)))
                throw Error($"{at}.relative_flops", $"must be positive, got {s.RelativeFlops}");
            NonNegative(s.TokensPerSecond, $"{at}.tokens_per_second");
            if (s.StoredParameters < 0) throw Error($"{at}.stored_parameters", $"must not be negative, got {s.StoredParameters}");
            NonNegative(s.FitSeconds, $"{at}.fit_seconds");
            NonNegative(s.EvalSeconds, $"{at}.eval_seconds");
        }

        void CheckScore(double v, string field)
        {
            if (!(v >= 0 && v <= 1)) throw Error(field, $"score must be in [0, 1], got {v}");
        }
        void NonNegative(double v, string field)
        {
            if (!(v >= 0 && double.IsFinite(v))) throw Error(field, $"must be a finite number ≥ 0, got {v}");
        }
    }

    static string Show(double? v) => v is double d ? d.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : "null";
}
