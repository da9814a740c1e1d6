using System.Globalization;
using System.Text;
using System.Text.Json;
using Amalgam.Evaluation;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Tokenizers;

namespace Amalgam.Bundled;

/// <summary>
/// The measured quality of a built suite on its test splits: the base alone, each expert on its own task, and the
/// uniform average of all experts (ΔW = (1/K)·Σ sₖBₖAₖ, attached in factored form) on every task.
/// </summary>
public sealed record QualityReport(
    IReadOnlyDictionary<string, double> Base,
    IReadOnlyDictionary<string, double> Expert,
    IReadOnlyDictionary<string, double> Uniform,
    IReadOnlyList<TaskDefinition> Tasks)
{
    public double BuildSeconds { get; init; }
    public IReadOnlyDictionary<string, double> StageSeconds { get; init; } = new Dictionary<string, double>();
    public SuiteBuildOptions? Options { get; init; }

    public static QualityReport Measure(CausalLM model, ITextTokenizer tokenizer, SuiteDefinition suite, IReadOnlyDictionary<string, LoraAdapter> experts)
    {
        var baseScores = suite.Tasks.ToDictionary(t => t.Name, t => SuiteEvaluator.Evaluate(model, tokenizer, suite, t).Score);
        var expertScores = new Dictionary<string, double>();
        foreach (var task in suite.HeldIn)
            using (experts[task.Name].AttachTo(model))
                expertScores[task.Name] = SuiteEvaluator.Evaluate(model, tokenizer, suite, task).Score;
        var uniform = new Dictionary<string, double>();
        var deltas = experts.Values.SelectMany(e => e.Deltas.Select(d => (d.Key, new LowRankDelta(d.Value.A, d.Value.B, d.Value.Scale / experts.Count)))).ToList();
        foreach (var (module, d) in deltas) model.Linears[module].Attach(d);
        try
        {
            foreach (var task in suite.Tasks) uniform[task.Name] = SuiteEvaluator.Evaluate(model, tokenizer, suite, task).Score;
        }
        finally
        {
            foreach (var (module, d) in deltas) model.Linears[module].Detach(d);
        }
        return new QualityReport(baseScores, expertScores, uniform, suite.Tasks);
    }

    public void Write(string dir)
    {
        File.WriteAllText(Path.Combine(dir, "quality.json"), JsonSerializer.Serialize(new
        {
            split = Evaluation.Suites.Suite.Test,
            @base = Base,
            expert = Expert,
            uniform_average = Uniform,
            variant = Variant(Options).ToString().ToLowerInvariant(),
            build_seconds = Math.Round(BuildSeconds, 1),
            stage_seconds = StageSeconds.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 1)),
        }, new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllText(Path.Combine(dir, "README.md"), Markdown());
    }

    static SuiteVariant Variant(SuiteBuildOptions? o) => o?.Variant ?? SuiteVariant.Scratch;

    /// <summary>The suite's quality targets per variant: the most the base may score on a held-in task, and the least each expert must.</summary>
    public static (double BaseMin, double BaseMax, double ExpertMin) Targets(SuiteVariant variant) =>
        variant == SuiteVariant.Instruct ? (0.15, 0.6, 0.95) : (0, 0.2, 0.9);

    static string Pct(double x) => (100 * x).ToString("F0", CultureInfo.InvariantCulture) + " %";

    public string Markdown()
    {
        var heldIn = Tasks.Where(t => !t.HeldOut).ToList();
        var sb = new StringBuilder();
        var variant = Variant(Options);
        var (baseMin, baseMax, expertTarget) = Targets(variant);
        sb.AppendLine("# The bundled expert suite").AppendLine();
        if (variant == SuiteVariant.Instruct)
        {
            sb.AppendLine("A tiny Llama-architecture base model built by Amalgam's own code — trained from scratch, then instruction-tuned on one");
            sb.AppendLine("phrasing of each held-in task, so it knows every task partly — one LoRA expert per held-in task, and the task data");
            sb.AppendLine("(train / validation / test JSONL). Regenerate everything with `amalgam suite build --out suite` (variant `instruct`);");
        }
        else
        {
            sb.AppendLine("A tiny Llama-architecture base model trained from scratch by Amalgam's own code, one LoRA expert per held-in task, and");
            sb.AppendLine("the task data (train / validation / test JSONL). Regenerate everything with `amalgam suite build --variant scratch --out suite/scratch`;");
        }
        string at = variant == SuiteVariant.Instruct ? "suite" : "suite/scratch";
        sb.AppendLine($"check any figure below with `amalgam eval --suite {at} [--adapter {at}/experts/<task>]`. The format is in docs/suites.md.").AppendLine();
        sb.AppendLine("## Quality on the test splits (measured by the build)").AppendLine();
        sb.AppendLine("| task | family | held out | base | own expert | uniform average of all experts |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var t in Tasks)
            sb.AppendLine($"| {t.Name} | {t.Family} | {(t.HeldOut ? "yes" : "no")} | {Pct(Base[t.Name])} | {(Expert.TryGetValue(t.Name, out var e) ? Pct(e) : "—")} | {Pct(Uniform[t.Name])} |");
        double baseLow = heldIn.Min(t => Base[t.Name]), baseHigh = heldIn.Max(t => Base[t.Name]), baseMean = heldIn.Average(t => Base[t.Name]);
        double expertMin = heldIn.Min(t => Expert[t.Name]);
        double expertMean = heldIn.Average(t => Expert[t.Name]), uniformMean = heldIn.Average(t => Uniform[t.Name]);
        sb.AppendLine();
        sb.AppendLine(variant == SuiteVariant.Instruct
            ? $"- Base alone: {Pct(baseLow)} to {Pct(baseHigh)} on the held-in tasks, mean {Pct(baseMean)} (target: each in {Pct(baseMin)}–{Pct(baseMax)})."
            : $"- Base alone: at most {Pct(baseHigh)} on any held-in task (target ≤ {Pct(baseMax)}).");
        sb.AppendLine($"- Each expert on its own task: at least {Pct(expertMin)} (target ≥ {Pct(expertTarget)}); mean {Pct(expertMean)}.");
        sb.AppendLine($"- Uniform average of all {heldIn.Count} experts: mean {Pct(uniformMean)} on the held-in tasks, against {Pct(expertMean)} for the experts.");
        sb.AppendLine();
        sb.AppendLine("## Build").AppendLine();
        sb.AppendLine($"`amalgam suite build` took {BuildSeconds / 60:F1} minutes on this machine ({Environment.ProcessorCount} cores).");
        if (Options is { } o)
        {
            if (o.Variant == SuiteVariant.Instruct)
                sb.AppendLine($"Instruction stage: every weight of the from-scratch base trained {o.Instruction.Steps} steps × {o.Instruction.BatchSize} " +
                              $"(lr {o.Instruction.LearningRate.ToString(CultureInfo.InvariantCulture)}) on {o.InstructionExamplesPerTask} training examples of each held-in task, all in its " +
                              $"template {o.InstructionTemplate}, plus {o.InstructionReplay} replayed pretraining questions" +
                              (o.TunedBase is not null ? $"; this build reused the tuned base of {o.TunedBase} as is (see below for how it was built)."
                               : o.PretrainedBase is null ? "." : $"; the from-scratch base was reused from {o.PretrainedBase} (not retrained)."));
            sb.AppendLine($"Base: {o.Layers} layers, hidden {o.HiddenSize}, {o.Heads} heads / {o.KeyValueHeads} kv heads, intermediate {o.IntermediateSize}, " +
                          $"char-level vocabulary, tied embeddings; {o.Base.Steps} steps × {o.Base.BatchSize} on {o.CorpusSize} pretraining texts. " +
                          $"Experts: LoRA r = {o.LoraRank}, alpha = {o.LoraAlpha}, all linear layers, {o.Expert.Steps} steps × {o.Expert.BatchSize} " +
                          $"on {o.TrainExamples} training examples each. Seed {o.Seed}.");
        }
        return sb.ToString();
    }
}
