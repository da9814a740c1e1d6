using Amalgam.Strategies;
using System.Text.Json.Nodes;
using Amalgam.Study;

namespace Amalgam.Tests.Study;

/// <summary>
/// A hand-made study: held-in tasks a, b, c (experts 1.0, 0.8, 0.5), held-out x, y, and one strategy of every
/// kind with scores chosen so that every finding and budget has a known answer (worked out in the tests).
/// </summary>
public static class StudyFixture
{
    public static readonly List<StudyTask> Tasks =
    [
        new() { Name = "a", Family = "letters", HeldOut = false, Metric = "exact_match" },
        new() { Name = "b", Family = "letters", HeldOut = false, Metric = "exact_match" },
        new() { Name = "c", Family = "numbers", HeldOut = false, Metric = "exact_match" },
        new() { Name = "x", Family = "letters", HeldOut = true, Metric = "exact_match" },
        new() { Name = "y", Family = "numbers", HeldOut = true, Metric = "multiple_choice" },
    ];

    public static readonly Dictionary<string, double> Experts = new() { ["a"] = 1.0, ["b"] = 0.8, ["c"] = 0.5 };

    public static StrategyResult Strategy(string name, string family, string? variant, double flops, double a, double b, double c, double? x, double? y,
        bool deployable = true, List<StudyTask>? tasks = null, Dictionary<string, double>? experts = null)
    {
        var perTask = new Dictionary<string, double> { ["a"] = a, ["b"] = b, ["c"] = c };
        if (x is double xv) perTask["x"] = xv;
        if (y is double yv) perTask["y"] = yv;
        var s = new StrategyResult
        {
            Name = name, Family = family, Variant = variant, Description = $"hand-made {family}", Deployable = deployable,
            PerTask = perTask, RelativeFlops = flops, TokensPerSecond = 1000 / flops, StoredParameters = (long)(1000 * flops),
            FitSeconds = family == StrategyFamily.Reference ? 0 : 1.25, EvalSeconds = 2.5,
        };
        return Normalization.Fill(s, tasks ?? Tasks, experts ?? Experts);
    }

    /// <summary>Held-in normalised scores: base 0.141667, oracle 1, ensembles 0.608333 / 0.716667, merges 0.433333 /
    /// 0.520833, router 0.891667, greedy selection 0.783333.</summary>
    public static List<StrategyResult> Strategies() =>
    [
        Strategy("base", StrategyFamily.Reference, null, 1.0, 0.1, 0.1, 0.1, 0.2, 0.2),
        Strategy("expert-oracle", StrategyFamily.Reference, "oracle", 1.0, 1.0, 0.8, 0.5, null, null, deployable: false),
        Strategy("ensemble-uniform", StrategyFamily.Ensemble, StrategyVariant.Uniform, 3.0, 0.6, 0.5, 0.3, 0.3, 0.3),
        Strategy("ensemble-fitted", StrategyFamily.Ensemble, StrategyVariant.Fitted, 3.0, 0.7, 0.6, 0.35, 0.3, 0.35),
        Strategy("merge-uniform", StrategyFamily.Merge, StrategyVariant.Uniform, 1.0, 0.4, 0.4, 0.2, 0.25, 0.25),
        Strategy("merge-fitted", StrategyFamily.Merge, StrategyVariant.Fitted, 1.0, 0.5, 0.45, 0.25, 0.3, 0.2),
        Strategy("router-mlp", StrategyFamily.Route, "learned", 1.5, 0.9, 0.7, 0.45, 0.3, 0.3),
        Strategy("select-greedy", StrategyFamily.Select, StrategyVariant.Greedy, 1.0, 0.8, 0.6, 0.4, 0.3, 0.3),
    ];

    public static StudyResults Results(List<StrategyResult>? strategies = null) => new()
    {
        Suite = "hand-made",
        SuitePath = "suite",
        Tasks = Tasks,
        ExpertScores = Experts,
        BaseModel = new BaseModelInfo
        {
            Path = "suite/base", Architecture = "LlamaForCausalLM", Parameters = 2160, FlopsPerExample = 42192,
            PromptTokens = 6, AnswerTokens = 3, TokensPerSecond = 1000,
        },
        Seed = 7,
        Machine = new MachineInfo { Cores = 2, Os = "Linux", Framework = ".NET", Device = "cpu" },
        TotalSeconds = 12.5,
        CreatedAt = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero),
        Strategies = (strategies ?? Strategies()).Select((s, i) => i == 3
            ? s with { Details = new JsonObject { ["weights"] = new JsonArray(0.5, 0.3, 0.2), ["mode"] = "probabilities" } }
            : s).ToList(),
    };
}
