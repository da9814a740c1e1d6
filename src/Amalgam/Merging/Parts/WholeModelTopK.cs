using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Merging.Parts;

/// <summary>
/// Exact whole-model magnitude top-k (FusionBench's <c>trim_scope: model</c>), computed tensor by tensor in three
/// rounds over |δᵢ| for each model i, with k = int(dᵢ × total numel):
/// round 0 counts entries by the high 16 bits of float32(|δ|) and finds the bucket holding the k-th largest;
/// round 1 counts that bucket's entries by their low 16 bits, which pins the float32 value T holding it;
/// round 2 collects the distinct exact values whose float32 rounding is T (one value for float32 inputs) with their
/// counts per tensor, which fixes the exact threshold t and how many entries equal to t are kept.
/// Ties at t are kept in order of tensor name (ordinal) then flat index, so the kept set is exactly k entries and
/// does not depend on the order tensors are streamed in. Every <c>|δ| &gt; t</c> is kept.
/// </summary>
public sealed class WholeModelTopK : IWholeModelPass
{
    const int HighBins = 1 << 15; // non-negative float32: the sign bit is 0
    const int LowBins = 1 << 16;

    readonly int models;
    readonly double?[] density;
    readonly long[] total;
    readonly long[][] high;
    readonly long[][] low;
    readonly long[] k;
    readonly int[] bucket;
    readonly long[] above;          // entries ranked strictly above the current bucket/value
    readonly int[] value32;         // float32 bits of T
    readonly Dictionary<string, Dictionary<double, long>>[] equal;
    readonly double[] threshold;
    readonly Dictionary<string, long>[] tieAllowance;
    readonly bool[] keepAll, keepNone;
    bool done;

    public WholeModelTopK(int models)
    {
        this.models = models;
        density = new double?[models];
        total = new long[models];
        high = Enumerable.Range(0, models).Select(_ => new long[HighBins]).ToArray();
        low = Enumerable.Range(0, models).Select(_ => new long[LowBins]).ToArray();
        k = new long[models];
        bucket = new int[models];
        above = new long[models];
        value32 = new int[models];
        equal = Enumerable.Range(0, models).Select(_ => new Dictionary<string, Dictionary<double, long>>(StringComparer.Ordinal)).ToArray();
        threshold = new double[models];
        tieAllowance = Enumerable.Range(0, models).Select(_ => new Dictionary<string, long>(StringComparer.Ordinal)).ToArray();
        keepAll = new bool[models];
        keepNone = new bool[models];
    }

    public int Rounds => 3;

    static double[] AbsDelta(MergeTensorInputs inputs, int i)
    {
        using var scope = NewDisposeScope();
        var d = (inputs.Models[i] - inputs.Base!).abs().to(ScalarType.Float64).cpu().contiguous();
        return d.data<double>().ToArray();
    }

    static int Bits(double v) => BitConverter.SingleToInt32Bits((float)v);

    public void Observe(int round, MergeTensorInputs inputs)
    {
        if (inputs.Base is null) throw new InvalidDataException($"tensor '{inputs.Name}': trim_scope: model needs a base model");
        if (inputs.Models.Count != models) throw new InvalidDataException($"tensor '{inputs.Name}': trim_scope: model expected {models} models, got {inputs.Models.Count}");
        for (int i = 0; i < models; i++)
        {
            if (round == 0)
            {
                double d = ParameterValues.PerModel(inputs, i, "density", 1.0);
                if (density[i] is { } prev && prev != d)
                    throw new InvalidDataException($"parameter 'density': trim_scope: model needs one density per model for the whole model; model {i} has {prev} and {d} (tensor '{inputs.Name}')");
                density[i] = d;
            }
            if (keepAll[i] || keepNone[i]) continue;
            var a = AbsDelta(inputs, i);
            switch (round)
            {
                case 0:
                    total[i] += a.Length;
                    foreach (var v in a) high[i][Bits(v) >> 16]++;
                    break;
                case 1:
                    foreach (var v in a) { int b = Bits(v); if (b >> 16 == bucket[i]) low[i][b & 0xFFFF]++; }
                    break;
                case 2:
                    Dictionary<double, long>? counts = null;
                    foreach (var v in a)
                    {
                        if (Bits(v) != value32[i]) continue;
                        if (counts is null && !equal[i].TryGetValue(inputs.Name, out counts)) equal[i][inputs.Name] = counts = new();
                        counts[v] = counts.GetValueOrDefault(v) + 1;
                    }
                    break;
            }
        }
    }

    public void EndRound(int round)
    {
        for (int i = 0; i < models; i++)
        {
            if (round == 0)
            {
                k[i] = Sparsifiers.KeepCount(density[i] ?? 1.0, total[i]);
                if ((density[i] ?? 1.0) >= 1 || k[i] >= total[i]) { keepAll[i] = true; continue; }
                if (k[i] <= 0) { keepNone[i] = true; continue; }
                long cum = 0;
                for (int b = HighBins - 1; b >= 0; b--)
                {
                    if (cum + high[i][b] >= k[i]) { bucket[i] = b; above[i] = cum; break; }
                    cum += high[i][b];
                }
                high[i] = [];
            }
            else if (keepAll[i] || keepNone[i]) continue;
            else if (round == 1)
            {
                long cum = above[i];
                for (int b = LowBins - 1; b >= 0; b--)
                {
                    if (cum + low[i][b] >= k[i]) { value32[i] = (bucket[i] << 16) | b; above[i] = cum; break; }
                    cum += low[i][b];
                }
                low[i] = [];
            }
            else if (round == 2)
            {
                long need = k[i] - above[i];
                var values = equal[i].SelectMany(kv => kv.Value.Keys).Distinct().OrderByDescending(v => v);
                foreach (var v in values)
                {
                    long count = equal[i].Values.Sum(c => c.GetValueOrDefault(v));
                    if (need > count) { need -= count; continue; }
                    threshold[i] = v;
                    foreach (var name in equal[i].Keys.Order(StringComparer.Ordinal))
                    {
                        long take = Math.Min(need, equal[i][name].GetValueOrDefault(v));
                        if (take > 0) tieAllowance[i][name] = take;
                        need -= take;
                    }
                    break;
                }
                equal[i].Clear();
            }
        }
        if (round == Rounds - 1) done = true;
    }

    /// <summary>The keep-mask of model <paramref name="model"/> for one tensor (0/1 in the delta's dtype).</summary>
    public Tensor Mask(string name, int model, Tensor delta)
    {
        if (!done) throw new InvalidOperationException("trim_scope: model: the whole-model pass has not run all its rounds");
        if (keepAll[model]) return ones_like(delta);
        if (keepNone[model]) return zeros_like(delta);
        var a = delta.abs();
        double t = threshold[model];
        var keep = a > t;
        long allowance = tieAllowance[model].GetValueOrDefault(name);
        if (allowance > 0)
        {
            var eq = (a == t).reshape(-1);
            var rank = eq.to(ScalarType.Int64).cumsum(0);
            keep = keep | (eq & (rank <= allowance)).reshape(delta.shape);
        }
        return keep.to(delta.dtype);
    }
}
