namespace Amalgam.Merging.Parts;

/// <summary>Which toolkit's conventions a task-vector method follows when a parameter is not given.</summary>
public enum Flavor { Mergekit, Peft, FusionBench }

/// <summary>How the elected sign is computed: sign of the sum of values, or sign of the sum of signs.</summary>
public enum ConsensusRule { Sum, Count }

/// <summary>Whether the sign election sees the weighted deltas <c>wᵢ·δ̃ᵢ</c> or the unweighted <c>δ̃ᵢ</c>.</summary>
public enum ConsensusInput { Weighted, Unweighted }

/// <summary>What the combined delta is divided by (when <c>normalize</c> is on).</summary>
public enum DivisorRule { Weights, Count, None }

/// <summary>How kept entries are rescaled after sparsification.</summary>
public enum RescaleRule { L1, InverseDensity, None }

/// <summary>Where magnitude top-k trimming ranks entries: within each tensor, or across the whole model.</summary>
public enum TrimScope { Tensor, Model }

/// <summary>The sparsifier of a task-vector method.</summary>
public enum SparsifierKind { None, Magnitude, Bernoulli, Breadcrumbs, Della }

/// <summary>The fixed shape of one named task-vector method: its sparsifier, whether it elects signs, and mergekit's defaults.</summary>
public sealed record TaskVectorRecipe(
    string Name,
    string Description,
    SparsifierKind Sparsifier,
    bool Consensus,
    bool MergekitNormalize,
    bool MergekitRescale);

/// <summary>The fully resolved conventions for one tensor: flavor defaults overridden by explicit parameters.</summary>
public sealed record TaskVectorOptions(
    Flavor Flavor,
    ConsensusRule Consensus,
    ConsensusInput ConsensusOn,
    DivisorRule Divisor,
    bool Normalize,
    RescaleRule Rescale,
    TrimScope TrimScope,
    double Lambda)
{
    public static readonly string[] FlavorNames = ["mergekit", "peft", "fusion_bench"];
    public static readonly string[] ConsensusNames = ["sum", "count"];
    public static readonly string[] ConsensusOnNames = ["weighted", "unweighted"];
    public static readonly string[] DivisorNames = ["weights", "count", "none"];
    public static readonly string[] RescaleNames = ["l1", "inverse_density", "none"];
    /// <summary>mergekit's boolean <c>rescale</c>: true = l1, false = none.</summary>
    public static readonly IReadOnlyDictionary<string, string> RescaleAliases = new Dictionary<string, string> { ["true"] = "l1", ["false"] = "none" };
    public static readonly string[] TrimScopeNames = ["tensor", "model"];

    public static Flavor ParseFlavor(MergeParameters global) =>
        ParameterValues.Choice(global, "flavor", FlavorNames) switch
        {
            "peft" => Flavor.Peft,
            "fusion_bench" => Flavor.FusionBench,
            _ => Flavor.Mergekit,
        };

    /// <summary>The defaults a flavor gives a method (before explicit parameters override them).</summary>
    public static TaskVectorOptions Defaults(TaskVectorRecipe m, Flavor f)
    {
        bool sparsifies = m.Sparsifier != SparsifierKind.None;
        bool random = m.Sparsifier is SparsifierKind.Bernoulli or SparsifierKind.Della;
        return f switch
        {
            Flavor.Peft => new(f, ConsensusRule.Sum, ConsensusInput.Unweighted, DivisorRule.Count,
                Normalize: m.Consensus, random ? RescaleRule.InverseDensity : RescaleRule.None, TrimScope.Tensor, 1.0),
            Flavor.FusionBench => new(f, ConsensusRule.Sum, ConsensusInput.Unweighted, DivisorRule.None,
                Normalize: false, random ? RescaleRule.InverseDensity : RescaleRule.None,
                m.Sparsifier == SparsifierKind.Magnitude ? TrimScope.Model : TrimScope.Tensor, 0.3),
            _ => new(f, ConsensusRule.Sum, ConsensusInput.Weighted, DivisorRule.Weights,
                m.MergekitNormalize, sparsifies && m.MergekitRescale ? RescaleRule.L1 : RescaleRule.None, TrimScope.Tensor, 1.0),
        };
    }

    /// <summary>Resolves the options for one tensor from the global parameters (validating every choice).</summary>
    public static TaskVectorOptions Resolve(TaskVectorRecipe m, MergeParameters global)
    {
        var o = Defaults(m, ParseFlavor(global));
        if (ParameterValues.Choice(global, "consensus", ConsensusNames) is { } c)
            o = o with { Consensus = c == "count" ? ConsensusRule.Count : ConsensusRule.Sum };
        if (ParameterValues.Choice(global, "consensus_on", ConsensusOnNames) is { } co)
            o = o with { ConsensusOn = co == "unweighted" ? ConsensusInput.Unweighted : ConsensusInput.Weighted };
        if (ParameterValues.Choice(global, "divisor", DivisorNames) is { } d)
            o = o with { Divisor = d switch { "count" => DivisorRule.Count, "none" => DivisorRule.None, _ => DivisorRule.Weights } };
        if (ParameterValues.Bool(global, "normalize") is { } n) o = o with { Normalize = n };
        if (RescaleChoice(global) is { } r) o = o with { Rescale = r };
        if (ParameterValues.Choice(global, "trim_scope", TrimScopeNames) is { } t)
            o = o with { TrimScope = t == "model" ? TrimScope.Model : TrimScope.Tensor };
        if (ParameterValues.Number(global, "lambda") is { } l) o = o with { Lambda = l };
        return o;
    }

    /// <summary><c>rescale</c> as a choice, or mergekit's boolean form (<c>true</c> = l1, <c>false</c> = none).</summary>
    public static RescaleRule? RescaleChoice(MergeParameters global)
    {
        if (global.Values.TryGetValue("rescale", out var v) && v is bool b) return RescaleAliases[b ? "true" : "false"] == "l1" ? RescaleRule.L1 : RescaleRule.None;
        return ParameterValues.Choice(global, "rescale", RescaleNames) switch
        {
            null => null,
            "l1" => RescaleRule.L1,
            "inverse_density" => RescaleRule.InverseDensity,
            _ => RescaleRule.None,
        };
    }
}
