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

        if (r.BaseScores is { } baseScores)
        {
            foreach (var (task, score) in baseScores)
            {
                if (!names.Contains(task)) throw Error($"base_scores.{task}", "not a task of the study");
                CheckScore(score, $"base_scores.{task}");
            }
            foreach (var t in r.HeldInTasks)
                if (!baseScores.ContainsKey(t.Name)) throw Error($"base_scores.{t.Name}", "missing (gap closed needs the base's score on every held-in task)");
        }

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
            double? gap = r.BaseScores is null ? null : Normalization.GapClosed(s.PerTask, r.Tasks, r.ExpertScores, r.BaseScores);
            if (gap is null != s.GapClosed is null || (gap is double g && Math.Abs(g - s.GapClosed!.Value) > MeanTolerance))
                throw Error($"{at}.gap_closed", $"{Show(s.GapClosed)} disagrees with per_task and base_scores, which give {Show(gap)}");
            if (s.PerExample is { } perExample)
            {
                if (!perExample.Keys.ToHashSet().SetEquals(s.PerTask.Keys))
                    throw Error($"{at}.per_example", $"tasks {string.Join(", ", perExample.Keys.Order())} differ from per_task's {string.Join(", ", s.PerTask.Keys.Order())}");
                foreach (var (task, scores) in perExample)
                {
                    if (scores is null || scores.Length == 0) throw Error($"{at}.per_example.{task}", "no examples");
                    foreach (var v in scores) CheckScore(v, $"{at}.per_example.{task}");
                    if (Math.Abs(scores.Average() - s.PerTask[task]) > MeanTolerance)
                        throw Error($"{at}.per_example.{task}", $"mean {scores.Average()} disagrees with per_task's {s.PerTask[task]}");
                }
            }
            if (s.TokensPerSecondSpread is double spread) NonNegative(spread, $"{at}.tokens_per_second_spread");
            if (!(s.RelativeFlops > 0 && double.IsFinite(s.RelativeFlops)))
                throw Error($"{at}.relative_flops", $"must be positive, got {s.RelativeFlops}");
            NonNegative(s.TokensPerSecond, $"{at}.tokens_per_second");
            if (s.StoredParameters < 0) throw Error($"{at}.stored_parameters", $"must not be negative, got {s.StoredParameters}");
            NonNegative(s.FitSeconds, $"{at}.fit_seconds");
            NonNegative(s.EvalSeconds, $"{at}.eval_seconds");
        }

        if (r.Skipped is { } skipped)
            for (int i = 0; i < skipped.Count; i++)
            {
                if (skipped[i] is null || string.IsNullOrWhiteSpace(skipped[i].Name)) throw Error($"skipped[{i}].name", "missing");
                if (strategyNames.Contains(skipped[i].Name)) throw Error($"skipped[{i}] '{skipped[i].Name}'", "is also in strategies");
                if (string.IsNullOrWhiteSpace(skipped[i].Reason)) throw Error($"skipped[{i}] '{skipped[i].Name}'.reason", "missing");
            }
        if (r.Stages is { } stages)
            for (int i = 0; i < stages.Count; i++)
            {
                if (stages[i] is null || string.IsNullOrWhiteSpace(stages[i].Name)) throw Error($"stages[{i}].name", "missing");
                NonNegative(stages[i].Seconds, $"stages[{i}] '{stages[i].Name}'.seconds");
                if (stages[i].CpuSeconds is double cpu) NonNegative(cpu, $"stages[{i}] '{stages[i].Name}'.cpu_seconds");
            }
        CheckIntervals(r, shownAs);

        void CheckScore(double v, string field)
        {
            if (!(v >= 0 && v <= 1)) throw Error(field, $"score must be in [0, 1], got {v}");
        }
        void NonNegative(double v, string field)
        {
            if (!(v >= 0 && double.IsFinite(v))) throw Error(field, $"must be a finite number ≥ 0, got {v}");
        }
    }

    /// <summary>Intervals present exactly when a bootstrap is, and equal (to 1e-9) to the ones recomputed from per_example.</summary>
    static void CheckIntervals(StudyResults r, string shownAs)
    {
        InvalidDataException Error(string field, string message) => new($"{shownAs}: {field}: {message}");
        if (r.Bootstrap is null)
        {
            for (int i = 0; i < r.Strategies.Count; i++)
            {
                var s = r.Strategies[i];
                foreach (var (field, value) in new[] { ("held_in_interval", s.HeldInInterval), ("gap_closed_interval", s.GapClosedInterval), ("held_out_interval", s.HeldOutInterval) })
                    if (value is not null) throw Error($"strategies[{i}] '{s.Name}'.{field}", "given without a top-level bootstrap");
            }
            return;
        }
        StudyBootstrap boot;
        try
        {
            boot = StudyBootstrap.Compute(r, r.Bootstrap);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{shownAs}: {e.Message}");
        }
        for (int i = 0; i < r.Strategies.Count; i++)
        {
            var s = r.Strategies[i];
            var rep = boot.Of(s.Name);
            Check("held_in_interval", s.HeldInInterval, rep.HeldIn);
            Check("gap_closed_interval", s.GapClosedInterval, rep.GapClosed);
            Check("held_out_interval", s.HeldOutInterval, rep.HeldOut);

            void Check(string field, double[]? stored, double[]? replicates)
            {
                string at = $"strategies[{i}] '{s.Name}'.{field}";
                if (replicates is null)
                {
                    if (stored is not null) throw Error(at, "given, but the strategy has no such score");
                    return;
                }
                if (stored is null) throw Error(at, "missing (the study has a bootstrap)");
                if (stored.Length != 2) throw Error(at, $"must be [lo, hi], got {stored.Length} numbers");
                var (lo, hi) = boot.Interval(replicates);
                if (Math.Abs(stored[0] - lo) > MeanTolerance || Math.Abs(stored[1] - hi) > MeanTolerance)
                    throw Error(at, $"[{Show(stored[0])}, {Show(stored[1])}] disagrees with the bootstrap of per_example, which gives [{Show(lo)}, {Show(hi)}]");
            }
        }
    }

    static string Show(double? v) => v is double d ? d.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : "null";
}
