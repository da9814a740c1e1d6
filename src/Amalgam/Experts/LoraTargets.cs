using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Amalgam.Experts;

/// <summary>PEFT's rules for which modules an adapter targets and which rank and alpha each one has.</summary>
public static class LoraTargets
{
    public const string AllLinear = "all-linear";

    /// <summary>
    /// Whether PEFT would put LoRA on <paramref name="module"/>: a string target is a regex that must match the whole
    /// name ("all-linear": every linear layer but the output layer); a list entry matches the name itself or a
    /// dotted suffix of it. <c>exclude_modules</c> uses the same rules to take modules out.
    /// </summary>
    public static bool IsTargeted(LoraConfig config, string module, string outputLayer)
    {
        var target = config.TargetModules!.Value;
        bool hit = target.ValueKind == JsonValueKind.String && target.GetString() == AllLinear
            ? module != outputLayer
            : Named(config, "target_modules", () => Matches(target, module));
        return hit && !(config.ExcludeModules is { ValueKind: JsonValueKind.String or JsonValueKind.Array } ex && Named(config, "exclude_modules", () => Matches(ex, module)));
    }

    static bool Matches(JsonElement spec, string module) => spec.ValueKind == JsonValueKind.String
        ? IsMatch(WholeName(spec.GetString()!), module)
        : spec.EnumerateArray().Select(e => e.GetString()!).Any(t => module == t || module.EndsWith("." + t, StringComparison.Ordinal));

    /// <summary>PEFT's get_pattern_key: the first pattern p with re.match(rf"(.*\.)?({p})$", module), else null.</summary>
    public static string? PatternKey(IEnumerable<string> patterns, string module) =>
        patterns.FirstOrDefault(p => IsMatch(SuffixName(p), module));

    static string WholeName(string p) => $"^(?:{p})\\z";
    static string SuffixName(string p) => $"^(?:.*\\.)?(?:{p})$";

    /// <summary>How long one pattern may take on one module name; real patterns take microseconds.</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(1);

    static readonly ConcurrentDictionary<string, Regex> compiled = new(StringComparer.Ordinal);

    /// <summary>
    /// Patterns come from untrusted files: the non-backtracking engine (linear time) where the pattern allows it,
    /// else the backtracking one with <see cref="MatchTimeout"/>; a bad pattern throws <see cref="ArgumentException"/>.
    /// </summary>
    static Regex Compile(string pattern) => compiled.GetOrAdd(pattern, p =>
    {
        try { return new Regex(p, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant, MatchTimeout); }
        catch (NotSupportedException) { return new Regex(p, RegexOptions.CultureInvariant, MatchTimeout); } // backreferences, lookarounds
    });

    static bool IsMatch(string pattern, string module)
    {
        try { return Compile(pattern).IsMatch(module); }
        catch (RegexMatchTimeoutException)
        {
            throw new InvalidDataException($"regular expression '{pattern}' took longer than {MatchTimeout.TotalSeconds:0} s on module '{module}'; simplify it");
        }
    }

    /// <summary>Null when <paramref name="pattern"/> compiles as used for <paramref name="field"/> (target_modules and exclude_modules as whole names, pattern keys as suffixes), else why not.</summary>
    public static string? PatternError(string field, string pattern)
    {
        try
        {
            Compile(field.EndsWith("_pattern", StringComparison.Ordinal) ? SuffixName(pattern) : WholeName(pattern));
            return null;
        }
        catch (ArgumentException e)
        {
            return $"'{pattern}' is not a valid regular expression ({(e is RegexParseException p ? $"{p.Error} at offset {p.Offset}" : e.Message.Split('\n')[0])})";
        }
    }

    /// <summary>
    /// The rank_pattern/alpha_pattern key Amalgam writes for <paramref name="module"/>: its path without the first
    /// component (<c>layers.0.mlp.down_proj</c> for <c>model.layers.0.mlp.down_proj</c>), unescaped. PEFT before 0.14
    /// looks keys up with <c>re.match(rf".*\.{key}$", name)</c>, which needs a dot before the key, so the full path
    /// never matches there; 0.14 and later use <c>(.*\.)?({key})$</c>, which the suffix matches too. Falls back to
    /// the full path (matched by 0.14 and later only) when the suffix would also select another of
    /// <paramref name="modules"/> or the name has a single component (e.g. <c>lm_head</c>).
    /// </summary>
    public static string WrittenPatternKey(string module, IEnumerable<string> modules)
    {
        int dot = module.IndexOf('.');
        if (dot < 0) return module;
        string suffix = module[(dot + 1)..];
        bool unique = modules.All(m => m == module || !(Regex.IsMatch(m, $@"^.*\.(?:{suffix})$") || Regex.IsMatch(m, $@"^(?:.*\.)?(?:{suffix})$")));
        return unique ? suffix : module;
    }

    public static int Rank(LoraConfig config, string module) =>
        config.RankPattern is { Count: > 0 } rp && Named(config, "rank_pattern", () => PatternKey(rp.Keys, module)) is { } k ? rp[k] : config.R;

    public static double Alpha(LoraConfig config, string module) =>
        config.AlphaPattern is { Count: > 0 } ap && Named(config, "alpha_pattern", () => PatternKey(ap.Keys, module)) is { } k ? ap[k] : config.LoraAlpha;

    /// <summary>A pattern that runs out of time is blamed on the file and field it came from.</summary>
    static T Named<T>(LoraConfig config, string field, Func<T> match)
    {
        try { return match(); }
        catch (InvalidDataException e) when (e.Message.StartsWith("regular expression", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{config.Source}: {field}: {e.Message}", e);
        }
    }

    /// <summary>The scale s of ΔW = s·B·A: alpha / r, or alpha / √r with rsLoRA, with the module's own r and alpha.</summary>
    public static double Scale(LoraConfig config, string module)
    {
        int r = Rank(config, module);
        double alpha = Alpha(config, module);
        return config.UseRslora ? alpha / Math.Sqrt(r) : alpha / r;
    }
}
