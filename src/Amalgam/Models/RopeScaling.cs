using System.Text.Json;

namespace Amalgam.Models;

/// <summary>
/// The <c>rope_scaling</c> of config.json, parsed and checked once, and transformers' rope initialisation for it
/// (<c>modeling_rope_utils.py</c>): the inverse frequencies and the attention factor that multiplies cos and sin.
/// Only <c>dynamic</c> and <c>longrope</c> depend on the sequence: on max(position_ids) + 1 of the forward.
/// </summary>
public sealed class RopeScaling
{
    public static readonly string[] Types = ["default", "linear", "dynamic", "yarn", "longrope", "llama3"];

    public string Type { get; private init; } = "default";
    public double Factor { get; private init; } = 1;
    /// <summary>llama3, yarn and longrope: the context length the model was pretrained with.</summary>
    public int OriginalMaxPositions { get; private init; }
    public double LowFreqFactor { get; private init; }
    public double HighFreqFactor { get; private init; }
    public double? AttentionFactor { get; private init; }
    public double BetaFast { get; private init; } = 32;
    public double BetaSlow { get; private init; } = 1;
    public double? Mscale { get; private init; }
    public double? MscaleAllDim { get; private init; }
    public bool Truncate { get; private init; } = true;
    public double[] ShortFactor { get; private init; } = [];
    public double[] LongFactor { get; private init; } = [];

    /// <summary>Whether the frequencies depend on the length of the forward.</summary>
    public bool DependsOnLength => Type is "dynamic" or "longrope";

    public static readonly RopeScaling None = new();

    /// <summary>
    /// Parses <paramref name="json"/> (null, or an object with <c>rope_type</c> or the legacy <c>type</c>), refusing
    /// an unknown type (NotSupportedException) or a missing or invalid parameter (InvalidDataException), each as
    /// <c>{source}: rope_scaling.{field}: {what}</c>.
    /// </summary>
    /// <param name="rotaryDim">rotated dimensions per head (longrope's factor lists have rotaryDim / 2 entries)</param>
    /// <param name="maxPositions">config.json's max_position_embeddings</param>
    /// <param name="originalMaxPositions">config.json's top-level original_max_position_embeddings (Phi-3), if any</param>
    public static RopeScaling Parse(JsonElement? json, int rotaryDim, int maxPositions, int? originalMaxPositions, string source)
    {
        Exception error(string field, string message) => new InvalidDataException($"{source}: {field}: {message}");
        if (json is not { ValueKind: not JsonValueKind.Null } s) return None;
        const string F = "rope_scaling";
        if (s.ValueKind != JsonValueKind.Object) throw error(F, $"expected an object or null, got {s.ValueKind}");
        // transformers moves a legacy "type" into "rope_type" (overriding it).
        string? type = s.TryGetProperty("type", out var t) || s.TryGetProperty("rope_type", out t) ? t.ToString() : null;
        if (type is null) throw error($"{F}.rope_type", "missing; expected one of " + string.Join(", ", Types));
        if (!Types.Contains(type))
            throw new NotSupportedException($"{source}: {F}.rope_type: '{type}' is not supported (supported: {string.Join(", ", Types)}); refusing rather than approximating");

        double? Num(string name)
        {
            if (!s.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind != JsonValueKind.Number) throw error($"{F}.{name}", $"expected a number, got {v.ValueKind}");
            double d = v.GetDouble();
            if (!double.IsFinite(d) || d <= 0) throw error($"{F}.{name}", $"must be a positive number, got {d}");
            return d;
        }
        double Required(string name) => Num(name) ?? throw error($"{F}.{name}", $"missing (rope_type '{type}' needs it)");
        int Positions(double? v, string name) =>
            v is double d && d == Math.Floor(d) ? (int)d : throw error($"{F}.{name}", v is null ? $"missing (rope_type '{type}' needs it)" : $"must be an integer, got {v}");
        double[] Factors(string name)
        {
            if (!s.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.Array)
                throw error($"{F}.{name}", "missing or not a list (longrope needs short_factor and long_factor)");
            var list = v.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Number ? x.GetDouble() : double.NaN).ToArray();
            if (list.Length != rotaryDim / 2) throw error($"{F}.{name}", $"has {list.Length} entries; expected rotary dimensions / 2 = {rotaryDim / 2}");
            if (list.Any(x => !(x > 0) || !double.IsFinite(x))) throw error($"{F}.{name}", "entries must be positive numbers");
            return list;
        }

        switch (type)
        {
            case "default":
                return None;
            case "linear":
            case "dynamic":
                return new RopeScaling { Type = type, Factor = Required("factor") };
            case "llama3":
            {
                var r = new RopeScaling
                {
                    Type = type, Factor = Required("factor"), LowFreqFactor = Required("low_freq_factor"), HighFreqFactor = Required("high_freq_factor"),
                    OriginalMaxPositions = Positions(Num("original_max_position_embeddings"), "original_max_position_embeddings"),
                };
                if (r.HighFreqFactor <= r.LowFreqFactor) throw error($"{F}.high_freq_factor", $"must exceed low_freq_factor ({r.LowFreqFactor}), got {r.HighFreqFactor}");
                return r;
            }
            case "yarn":
            {
                int original = Positions(Num("original_max_position_embeddings") ?? maxPositions, "original_max_position_embeddings");
                bool truncate = !s.TryGetProperty("truncate", out var tr) || tr.ValueKind != JsonValueKind.False;
                return new RopeScaling
                {
                    Type = type, Factor = Num("factor") ?? (double)maxPositions / original, OriginalMaxPositions = original,
                    AttentionFactor = Num("attention_factor"), BetaFast = Num("beta_fast") ?? 32, BetaSlow = Num("beta_slow") ?? 1,
                    Mscale = Num("mscale"), MscaleAllDim = Num("mscale_all_dim"), Truncate = truncate,
                };
            }
            default: // longrope
            {
                int original = Positions(originalMaxPositions ?? Num("original_max_position_embeddings"), "original_max_position_embeddings");
                return new RopeScaling
                {
                    Type = type, Factor = Num("factor") ?? (double)maxPositions / original, OriginalMaxPositions = original,
                    AttentionFactor = Num("attention_factor"), ShortFactor = Factors("short_factor"), LongFactor = Factors("long_factor"),
                };
            }
        }
    }

    /// <summary>
    /// transformers' inverse frequencies (rotaryDim / 2 of them) and cos/sin factor for rope base
    /// <paramref name="theta"/>, in a forward whose longest position is <paramref name="length"/> − 1.
    /// </summary>
    public (double[] InverseFrequencies, double AttentionFactor) Frequencies(int rotaryDim, double theta, int maxPositions, long length)
    {
        int half = rotaryDim / 2;
        double[] Inverse(double b) => Enumerable.Range(0, half).Select(i => 1.0 / Math.Pow(b, 2.0 * i / rotaryDim)).ToArray();
        var inv = Inverse(theta);
        switch (Type)
        {
            case "linear":
                return (inv.Select(f => f / Factor).ToArray(), 1);
            case "dynamic":
            {
                // NTK-aware: a larger base once the sequence outgrows max_position_embeddings.
                double l = Math.Max(length, maxPositions);
                return (Inverse(theta * Math.Pow(Factor * l / maxPositions - (Factor - 1), rotaryDim / (rotaryDim - 2.0))), 1);
            }
            case "llama3":
            {
                double lowWave = OriginalMaxPositions / LowFreqFactor, highWave = OriginalMaxPositions / HighFreqFactor;
                return (inv.Select(f =>
                {
                    double wave = 2 * Math.PI / f;
                    if (wave < highWave) return f;                 // short waves: unchanged
                    if (wave > lowWave) return f / Factor;         // long waves: interpolated
                    double smooth = (OriginalMaxPositions / wave - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
                    return (1 - smooth) * f / Factor + smooth * f;
                }).ToArray(), 1);
            }
            case "yarn":
            {
                static double Of(double scale, double m) => scale <= 1 ? 1 : 0.1 * m * Math.Log(scale) + 1;
                double attention = AttentionFactor ?? (Mscale is double m && MscaleAllDim is double all ? Of(Factor, m) / Of(Factor, all) : Of(Factor, 1));
                double Dim(double rotations) => rotaryDim * Math.Log(OriginalMaxPositions / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
                double low = Dim(BetaFast), high = Dim(BetaSlow);
                if (Truncate) { low = Math.Floor(low); high = Math.Ceiling(high); }
                low = Math.Max(low, 0);
                high = Math.Min(high, rotaryDim - 1);
                if (low == high) high += 0.001;
                return (inv.Select((f, i) =>
                {
                    double keep = 1 - Math.Clamp((i - low) / (high - low), 0, 1); // 1: extrapolate (as is), 0: interpolate
                    return f / Factor * (1 - keep) + f * keep;
                }).ToArray(), attention);
            }
            case "longrope":
            {
                double attention = AttentionFactor ?? (Factor <= 1 ? 1 : Math.Sqrt(1 + Math.Log(Factor) / Math.Log(OriginalMaxPositions)));
                var ext = length > OriginalMaxPositions ? LongFactor : ShortFactor;
                return (inv.Select((f, i) => f / ext[i]).ToArray(), attention);
            }
            default:
                return (inv, 1);
        }
    }
}
