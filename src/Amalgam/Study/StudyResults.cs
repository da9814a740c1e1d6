using Amalgam.Strategies;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Amalgam.Study;

/// <summary>
/// Everything one <c>amalgam study</c> run measured: the suite's tasks, the experts' scores on their own tasks, and
/// one <see cref="StrategyResult"/> per way of combining experts. Serialised to <c>results.json</c> by
/// <see cref="StudyResultsFile"/>; report.md and the plots are derived from it alone.
/// </summary>
public sealed record StudyResults
{
    public const int CurrentSchemaVersion = 1;

    [JsonPropertyName("schema_version"), JsonRequired] public int SchemaVersion { get; init; } = CurrentSchemaVersion;
    /// <summary>The suite's name (suite.yaml <c>name</c>).</summary>
    [JsonPropertyName("suite"), JsonRequired] public string Suite { get; init; } = "";
    /// <summary>The suite folder the study ran on, as given.</summary>
    [JsonPropertyName("suite_path")] public string? SuitePath { get; init; }
    /// <summary>The split every score was measured on (normally <c>test</c>).</summary>
    [JsonPropertyName("split")] public string Split { get; init; } = "test";
    [JsonPropertyName("tasks"), JsonRequired] public List<StudyTask> Tasks { get; init; } = [];
    /// <summary>Held-in task -> its expert's score on that task: the denominators of the normalised score.</summary>
    [JsonPropertyName("expert_scores"), JsonRequired] public Dictionary<string, double> ExpertScores { get; init; } = [];
    /// <summary>
    /// Task -> the base model's score on that task (every task): the zero point of gap closed. Null in results
    /// written without it (then no strategy has <c>gap_closed</c>).
    /// </summary>
    [JsonPropertyName("base_scores")] public Dictionary<string, double>? BaseScores { get; init; }
    [JsonPropertyName("base_model"), JsonRequired] public BaseModelInfo BaseModel { get; init; } = new();
    [JsonPropertyName("seed"), JsonRequired] public int Seed { get; init; }
    [JsonPropertyName("machine"), JsonRequired] public MachineInfo Machine { get; init; } = new();
    /// <summary>Wall-clock seconds of the whole study.</summary>
    [JsonPropertyName("total_seconds"), JsonRequired] public double TotalSeconds { get; init; }
    [JsonPropertyName("created_at"), JsonRequired] public DateTimeOffset CreatedAt { get; init; }
    [JsonPropertyName("strategies"), JsonRequired] public List<StrategyResult> Strategies { get; init; } = [];
    /// <summary>The paired bootstrap behind every interval; null when the study kept no per-example scores.</summary>
    [JsonPropertyName("bootstrap")] public BootstrapSettings? Bootstrap { get; init; }
    /// <summary>Where the study's time went, in order (<see cref="StudyStage"/>); null in results written without it.</summary>
    [JsonPropertyName("stages")] public List<StudyStage>? Stages { get; init; }
    /// <summary>Strategies of the catalogue that did not run, and why (not applicable to this suite, --skip, --budget).</summary>
    [JsonPropertyName("skipped")] public List<SkippedStrategy>? Skipped { get; init; }

    [JsonIgnore] public IEnumerable<StudyTask> HeldInTasks => Tasks.Where(t => !t.HeldOut);
    [JsonIgnore] public IEnumerable<StudyTask> HeldOutTasks => Tasks.Where(t => t.HeldOut);

    public StrategyResult Strategy(string name) => Strategies.FirstOrDefault(s => s.Name == name)
        ?? throw new ArgumentException($"no strategy named '{name}' in the study", nameof(name));
}

/// <summary>
/// A paired bootstrap over test examples: <see cref="Samples"/> resamples, each drawing every task's examples with
/// replacement (the same draw for every strategy), from <see cref="Seed"/>; intervals are the central
/// <see cref="Level"/> percentile intervals (<see cref="StudyBootstrap"/>).
/// </summary>
public sealed record BootstrapSettings
{
    [JsonPropertyName("samples"), JsonRequired] public int Samples { get; init; }
    [JsonPropertyName("seed"), JsonRequired] public int Seed { get; init; }
    [JsonPropertyName("level"), JsonRequired] public double Level { get; init; }
}

/// <summary>One stage of the study and its wall-clock seconds.</summary>
public sealed record StudyStage
{
    [JsonPropertyName("name"), JsonRequired] public string Name { get; init; } = "";
    [JsonPropertyName("seconds"), JsonRequired] public double Seconds { get; init; }
    /// <summary>
    /// CPU seconds of this process (every thread, user + system) in the stage: on a shared machine wall time mostly
    /// measures the other jobs, CPU time the study's own work. Null if not measured.
    /// </summary>
    [JsonPropertyName("cpu_seconds")] public double? CpuSeconds { get; init; }
}

/// <summary>A catalogue strategy the study did not run.</summary>
public sealed record SkippedStrategy
{
    [JsonPropertyName("name"), JsonRequired] public string Name { get; init; } = "";
    [JsonPropertyName("reason"), JsonRequired] public string Reason { get; init; } = "";
}

/// <summary>One task of the suite as the study saw it.</summary>
public sealed record StudyTask
{
    [JsonPropertyName("name"), JsonRequired] public string Name { get; init; } = "";
    [JsonPropertyName("family"), JsonRequired] public string Family { get; init; } = "";
    [JsonPropertyName("held_out"), JsonRequired] public bool HeldOut { get; init; }
    [JsonPropertyName("metric"), JsonRequired] public string Metric { get; init; } = "";
}

/// <summary>The base model and the per-token cost every relative_flops is divided by.</summary>
public sealed record BaseModelInfo
{
    [JsonPropertyName("path"), JsonRequired] public string Path { get; init; } = "";
    [JsonPropertyName("architecture"), JsonRequired] public string Architecture { get; init; } = "";
    /// <summary>Parameters of the base model (tied embeddings counted once), see <see cref="FlopCounter.Parameters"/>.</summary>
    [JsonPropertyName("parameters"), JsonRequired] public long Parameters { get; init; }
    /// <summary>The base model's forward FLOPs per example (<see cref="CostModel.Base"/>): relative_flops = 1.</summary>
    [JsonPropertyName("flops_per_example"), JsonRequired] public double FlopsPerExample { get; init; }
    /// <summary>Mean prompt tokens per example, the cost model's convention.</summary>
    [JsonPropertyName("prompt_tokens"), JsonRequired] public double PromptTokens { get; init; }
    /// <summary>Mean answer tokens per example (generated, or the scored option), the cost model's convention.</summary>
    [JsonPropertyName("answer_tokens"), JsonRequired] public double AnswerTokens { get; init; }
    /// <summary>Measured tokens/s of the base model alone, for comparison with the strategies'.</summary>
    [JsonPropertyName("tokens_per_second")] public double TokensPerSecond { get; init; }
}

/// <summary>Where the study ran: timings are only comparable on the same machine.</summary>
public sealed record MachineInfo
{
    [JsonPropertyName("cores"), JsonRequired] public int Cores { get; init; }
    [JsonPropertyName("os")] public string Os { get; init; } = "";
    [JsonPropertyName("framework")] public string Framework { get; init; } = "";
    /// <summary>The torch device the strategies ran on (<c>cpu</c>, <c>cuda</c>).</summary>
    [JsonPropertyName("device")] public string Device { get; init; } = "cpu";

    /// <summary>This process's machine.</summary>
    public static MachineInfo Current(string device = "cpu") => new()
    {
        Cores = Environment.ProcessorCount,
        Os = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        Framework = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
        Device = device,
    };
}

/// <summary>One way of combining experts, its quality and its cost.</summary>
public sealed record StrategyResult
{
    /// <summary>Unique within a study, e.g. <c>ties-fitted</c>, <c>router-mlp-top1</c>.</summary>
    [JsonPropertyName("name"), JsonRequired] public string Name { get; init; } = "";
    /// <summary>One of <see cref="StrategyFamily.All"/>.</summary>
    [JsonPropertyName("family"), JsonRequired] public string Family { get; init; } = "";
    /// <summary>A tag within the family (<see cref="StrategyVariant"/>): what the findings compare; null if none.</summary>
    [JsonPropertyName("variant")] public string? Variant { get; init; }
    [JsonPropertyName("description")] public string Description { get; init; } = "";
    /// <summary>
    /// False for references that are not one servable system (the per-task expert oracle needs the task id):
    /// excluded from recommendations and findings, kept in tables and plots.
    /// </summary>
    [JsonPropertyName("deployable")] public bool Deployable { get; init; } = true;
    /// <summary>Task -> score in [0, 1]. Every held-in task; every held-out task or none.</summary>
    [JsonPropertyName("per_task"), JsonRequired] public Dictionary<string, double> PerTask { get; init; } = [];
    /// <summary><see cref="Normalization.HeldIn"/> of <see cref="PerTask"/>; checked on load.</summary>
    [JsonPropertyName("held_in_normalized"), JsonRequired] public double HeldInNormalized { get; init; }
    /// <summary><see cref="Normalization.HeldOut"/> of <see cref="PerTask"/>; null when no held-out task was scored.</summary>
    [JsonPropertyName("held_out"), JsonRequired] public double? HeldOut { get; init; }
    /// <summary><see cref="Normalization.GapClosed"/> of <see cref="PerTask"/> (needs the study's base_scores); null without them or when no task qualifies.</summary>
    [JsonPropertyName("gap_closed")] public double? GapClosed { get; init; }
    /// <summary>
    /// Task -> the score of every scored test example, in split order (their mean is <see cref="PerTask"/>'s value):
    /// what the bootstrap resamples. Null in results written without them.
    /// </summary>
    [JsonPropertyName("per_example"), JsonConverter(typeof(CompactScoresConverter))] public Dictionary<string, double[]>? PerExample { get; init; }
    /// <summary>95 % (bootstrap level) interval of <see cref="HeldInNormalized"/>; null without a bootstrap.</summary>
    [JsonPropertyName("held_in_interval")] public double[]? HeldInInterval { get; init; }
    /// <summary>Interval of <see cref="GapClosed"/>; null without a bootstrap or a gap closed.</summary>
    [JsonPropertyName("gap_closed_interval")] public double[]? GapClosedInterval { get; init; }
    /// <summary>Interval of <see cref="HeldOut"/>; null without a bootstrap or held-out scores.</summary>
    [JsonPropertyName("held_out_interval")] public double[]? HeldOutInterval { get; init; }
    /// <summary>FLOPs per example divided by the base model's (<see cref="CostModel"/>).</summary>
    [JsonPropertyName("relative_flops"), JsonRequired] public double RelativeFlops { get; init; }
    /// <summary>Measured generated-or-scored tokens per second on the study's machine.</summary>
    [JsonPropertyName("tokens_per_second"), JsonRequired] public double TokensPerSecond { get; init; }
    /// <summary>
    /// (slowest − fastest) / fastest of the timed probe runs behind <see cref="TokensPerSecond"/>: above
    /// <see cref="StudyFormat.StableSpread"/> the measurement is called unstable and nothing rests on it. Null if not measured.
    /// </summary>
    [JsonPropertyName("tokens_per_second_spread")] public double? TokensPerSecondSpread { get; init; }
    /// <summary>
    /// The strategy whose probe run <see cref="TokensPerSecond"/> was measured on, when it is not this one: one that
    /// runs the same ops on the same shapes (a folded merge and the base; ensembles that differ only in weights). Null: measured itself.
    /// </summary>
    [JsonPropertyName("tokens_per_second_from")] public string? TokensPerSecondFrom { get; init; }
    /// <summary>
    /// The strategy whose test evaluation this one reuses, when it computes exactly the same function (a fit that fell
    /// back to uniform weights, a merge with the same recipe); then <see cref="EvalSeconds"/> is 0. Null: evaluated itself.
    /// </summary>
    [JsonPropertyName("evaluation_from")] public string? EvaluationFrom { get; init; }
    /// <summary>Parameters that must be stored and served: the base, plus every adapter, router or merged copy kept.</summary>
    [JsonPropertyName("stored_parameters"), JsonRequired] public long StoredParameters { get; init; }
    /// <summary>Seconds spent fitting (weights, router, selection) before evaluation; 0 if nothing is fitted.</summary>
    [JsonPropertyName("fit_seconds"), JsonRequired] public double FitSeconds { get; init; }
    [JsonPropertyName("eval_seconds"), JsonRequired] public double EvalSeconds { get; init; }
    /// <summary>Free-form extras, e.g. fitted weights or the chosen subset: string values or nested JSON.</summary>
    [JsonPropertyName("details")] public JsonObject? Details { get; init; }
}

/// <summary>Writes per-example scores one task per line (a study holds thousands of them); reads any JSON layout.</summary>
public sealed class CompactScoresConverter : JsonConverter<Dictionary<string, double[]>?>
{
    public override Dictionary<string, double[]>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.Null ? null : JsonSerializer.Deserialize<Dictionary<string, double[]>>(ref reader);

    public override void Write(Utf8JsonWriter writer, Dictionary<string, double[]>? value, JsonSerializerOptions options)
    {
        if (value is null) { writer.WriteNullValue(); return; }
        writer.WriteStartObject();
        foreach (var (task, scores) in value)
        {
            writer.WritePropertyName(task);
            writer.WriteRawValue("[" + string.Join(",", scores.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))) + "]");
        }
        writer.WriteEndObject();
    }
}
