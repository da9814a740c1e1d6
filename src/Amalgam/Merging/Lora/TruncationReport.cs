using System.Globalization;
using System.Text;
using static TorchSharp.torch;

namespace Amalgam.Merging.Lora;

/// <summary>One module of a truncated adapter: the rank kept and the relative Frobenius error ‖ΔW − B·A‖ / ‖ΔW‖.</summary>
public sealed record ModuleTruncation(string Module, int Rank, double RelativeError);

/// <summary>
/// What truncating dense updates to low rank lost, per module: written into the adapter's README and printed by
/// the CLI, so that a lossy adapter says so. The relative error of the best rank-k approximation is
/// √(Σ_{i&gt;k} σᵢ²) / √(Σ σᵢ²) (Eckart–Young), 0 for a zero update.
/// </summary>
public sealed record TruncationReport(IReadOnlyList<ModuleTruncation> Modules, int? RequestedRank, double? MaxError)
{
    public double Max => Modules.Count == 0 ? 0 : Modules.Max(m => m.RelativeError);

    /// <summary>The median (the mean of the two middle values for an even count).</summary>
    public double Median
    {
        get
        {
            if (Modules.Count == 0) return 0;
            var e = Modules.Select(m => m.RelativeError).Order().ToList();
            return e.Count % 2 == 1 ? e[e.Count / 2] : (e[e.Count / 2 - 1] + e[e.Count / 2]) / 2;
        }
    }

    public int MinRank => Modules.Count == 0 ? 0 : Modules.Min(m => m.Rank);
    public int MaxRank => Modules.Count == 0 ? 0 : Modules.Max(m => m.Rank);

    static string F(double x) => x.ToString("0.0000", CultureInfo.InvariantCulture);

    string Ranks => MinRank == MaxRank ? $"rank {MaxRank}" : $"ranks {MinRank}–{MaxRank}";

    /// <summary>One line for the console.</summary>
    public string Summary =>
        $"truncation error (relative Frobenius, per module) over {Modules.Count} modules: max {F(Max)}, median {F(Median)}; {Ranks}" +
        (MaxError is { } e ? $" (rank: auto, max_error {e.ToString(CultureInfo.InvariantCulture)})" : "");

    /// <summary>The README section: the summary and a table of every module.</summary>
    public string Markdown()
    {
        var r = new StringBuilder();
        r.AppendLine("## Truncation error").AppendLine();
        r.AppendLine($"Each module's merged update ΔW was truncated to rank k by SVD (the best rank-k approximation). {Summary}.").AppendLine();
        r.AppendLine("| module | rank | ‖ΔW − B·A‖ / ‖ΔW‖ |").AppendLine("|---|---|---|");
        foreach (var m in Modules) r.AppendLine($"| `{m.Module}` | {m.Rank} | {F(m.RelativeError)} |");
        return r.ToString();
    }

    /// <summary>
    /// The truncated factorisation of one update at <paramref name="rank"/>, or (when <paramref name="maxError"/> is
    /// given) at the smallest rank whose relative error is at most it; with its error. Padding to a larger declared
    /// rank is left to the caller.
    /// </summary>
    public static (Tensor A, Tensor B, int Rank, double Error) Truncate(Tensor delta, int? rank, double? maxError)
    {
        using var scope = NewDisposeScope();
        var (u, s, vh) = linalg.svd(delta, fullMatrices: false);
        var s64 = s.to(ScalarType.Float64);
        var sq = (s64 * s64).data<double>().ToArray();
        double total = sq.Sum();
        // tail[k] = Σ_{i ≥ k} σᵢ², the squared error of keeping k
        var tail = new double[sq.Length + 1];
        for (int i = sq.Length - 1; i >= 0; i--) tail[i] = tail[i + 1] + sq[i];
        double Err(int k) => total <= 0 ? 0 : Math.Sqrt(Math.Max(0, tail[Math.Min(k, sq.Length)]) / total);
        int keep;
        if (maxError is { } e)
        {
            keep = 1;
            while (keep < sq.Length && Err(keep) > e) keep++;
        }
        else keep = rank ?? throw new ArgumentException("a rank or a max error");
        int k = Math.Min(keep, sq.Length);
        var b = u.narrow(1, 0, k) * s.narrow(0, 0, k).unsqueeze(0);
        var a = vh.narrow(0, 0, k);
        return (a.contiguous().MoveToOuterDisposeScope(), b.contiguous().MoveToOuterDisposeScope(), keep, Err(keep));
    }
}
