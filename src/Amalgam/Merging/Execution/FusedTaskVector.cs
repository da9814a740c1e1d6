using System.Numerics;
using Amalgam.Merging.Methods;
using Amalgam.Merging.Parts;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Merging.Execution;

/// <summary>
/// Task arithmetic, TIES and magnitude pruning (the deterministic task-vector configurations: magnitude trim per
/// tensor or none, rescale none or inverse_density, sign consensus sum / count or none, any divisor, λ) as plain
/// loops over the memory-mapped inputs, chunk by chunk on the process's threads, instead of ~40 dispatched tensor
/// ops per row block. Every float32 operation is the one <see cref="TaskVectorMethod.Merge"/> performs, in the same
/// order and with no fused multiply-add, so the output is the same bytes (RowBlockMergeTests compares them).
/// The magnitude threshold is a radix select on the float bits of |δᵢ| (two histogram passes over the inputs, no
/// |δ| buffer): the k-th largest t, every |δ| &gt; t kept and the entries equal to t kept in flat order up to k,
/// which is the first k of the stable descending sort, as <see cref="Sparsifiers.TopRanked"/> keeps them.
/// Returns null (the other paths then run, and give their messages) for anything else: other methods, a LoRA
/// input, a dtype other than bf16/f16/f32, a float64 merge, trim_scope: model, the L1 rescale, a NaN magnitude,
/// a non-finite or overflowing result.
/// </summary>
internal static unsafe class FusedTaskVector
{
    const int Chunk = 1 << 16;

    sealed record Setup(int N, float[] W, double[] Density, long[] Keep, bool Consensus, ConsensusRule Rule, bool ConsensusOnWeighted,
        DivisorRule Divisor, bool Normalize, RescaleRule Rescale, double Lambda);

    public static Tensor? TryMerge(MergeInputSet inputs, StreamingMerge.Planned p, IWholeModelPass? pass)
    {
        var recipe = inputs.Recipe;
        if (recipe.Method is not TaskVectorMethod method || method.IsRandomized || recipe.ComputeDtype != ScalarType.Float32) return null;
        if (method.Recipe.Sparsifier is not (SparsifierKind.None or SparsifierKind.Magnitude)) return null;
        if (!inputs.UsesBase || p.Key.Base is null || p.Key.Models.Count == 0) return null;
        var all = new[] { p.Key.Base }.Concat(p.Key.Models).ToList();
        if (all.Any(k => k.Source is not CheckpointSource || !Supported(k.Source.Describe(k.Name).DType) || !k.Source.Describe(k.Name).Shape.SequenceEqual(p.Spec.Shape))) return null;
        var outType = p.Spec.DType;
        if (!Supported(outType)) return null;
        long n = p.Spec.Shape.Aggregate(1L, (a, b) => a * b);
        if (n == 0 || n * 4 > (1L << 30)) return null; // the output is written through one span

        MergeTensorInputs header;
        using (var probe = NewDisposeScope())
        {
            long[] none = [0, .. p.Spec.Shape.Skip(1)];
            var zero = empty(p.Spec.Shape.Length == 0 ? [0] : none, ScalarType.Float32);
            header = inputs.Inputs(p.Key, zero, p.Key.Models.Select(_ => zero).ToList(), null, pass);
        }
        var o = TaskVectorOptions.Resolve(method.Recipe, header.Global);
        int models = p.Key.Models.Count;
        bool sparsifies = method.Recipe.Sparsifier == SparsifierKind.Magnitude;
        if (sparsifies && (o.TrimScope == TrimScope.Model || o.Rescale == RescaleRule.L1)) return null;
        var density = Enumerable.Range(0, models).Select(i => sparsifies ? ParameterValues.PerModel(header, i, "density", 1.0) : 1.0).ToArray();
        if (density.Any(d => double.IsNaN(d) || d < 0)) return null;
        var setup = new Setup(models,
            Enumerable.Range(0, models).Select(i => (float)ParameterValues.PerModel(header, i, "weight", 1.0)).ToArray(),
            density, density.Select(d => d < 1 ? Math.Max(0, Sparsifiers.KeepCount(d, n)) : n).ToArray(),
            method.Recipe.Consensus, o.Consensus, o.ConsensusOn == ConsensusInput.Weighted, o.Divisor, o.Normalize, o.Rescale, o.Lambda);

        var sources = all.Select(k => (Address: (nint)((CheckpointSource)k.Source).Address(k.Name), Type: k.Source.Describe(k.Name).DType)).ToArray();
        // Per trimmed model: the threshold's float bits, how many entries equal to it are kept, and (only when
        // those are not all of them) how many equal entries precede each chunk.
        var trims = new Trim?[models];
        for (int i = 0; i < models; i++)
            if (density[i] < 1)
            {
                trims[i] = Threshold(sources[0], sources[i + 1], n, setup.Keep[i]);
                if (trims[i] is null) return null; // a NaN magnitude: the other paths refuse it with their message
            }

        var output = empty(p.Spec.Shape, outType.ToScalarType());
        bool ok = true;
        fixed (byte* outBytes = output.bytes)
        {
            nint target = (nint)outBytes;
            Parallel.For(0, (int)((n + Chunk - 1) / Chunk), Options(), () => new Scratch(setup.N), (c, state, s) =>
            {
                long start = (long)c * Chunk;
                int count = (int)Math.Min(Chunk, n - start);
                if (!MergeChunk(setup, sources, trims, s, start, count, outType, target)) { ok = false; state.Stop(); }
                return s;
            }, _ => { });
        }
        if (!ok) { output.Dispose(); return null; }
        return output;
    }

    static bool Supported(DType t) => t is DType.BF16 or DType.F16 or DType.F32;

    static ParallelOptions Options() => new() { MaxDegreeOfParallelism = Math.Max(1, get_num_threads()) };

    sealed class Scratch(int n)
    {
        public readonly float[] Base = new float[Chunk];
        public readonly float[][] Models = Enumerable.Range(0, n).Select(_ => new float[Chunk]).ToArray();
        public readonly float[] Mixed = new float[Chunk];
        public readonly float[] Divisor = new float[Chunk];
        public readonly float[] Score = new float[Chunk];
    }

    /// <summary>Elements [start, start + count) of a stored tensor as float32 (bf16 and f16 widen exactly).</summary>
    static void Read((nint Address, DType Type) source, long start, int count, float[] into)
    {
        switch (source.Type)
        {
            case DType.F32:
                new ReadOnlySpan<float>((float*)source.Address + start, count).CopyTo(into);
                break;
            case DType.BF16:
            {
                var from = new ReadOnlySpan<ushort>((ushort*)source.Address + start, count);
                for (int j = 0; j < count; j++) into[j] = BitConverter.Int32BitsToSingle(from[j] << 16);
                break;
            }
            default:
            {
                var from = new ReadOnlySpan<Half>((Half*)source.Address + start, count);
                for (int j = 0; j < count; j++) into[j] = (float)from[j];
                break;
            }
        }
    }

    sealed record Trim(uint Bits, long EqualKept, long EqualTotal, long[]? EqualBefore);

    /// <summary>
    /// The k-th largest |θᵢ − θ₀| by radix select on its float bits (non-negative floats order as their bits):
    /// a histogram of the high 16 bits, then of the low 16 bits within the chosen bin. Null when a magnitude is NaN.
    /// </summary>
    static Trim? Threshold((nint, DType) baseSource, (nint, DType) model, long n, long k)
    {
        if (k <= 0) return new Trim(uint.MaxValue, 0, 0, null);           // keeps nothing: every |δ| ≤ max < "above max"
        if (k >= n) return new Trim(0, long.MaxValue, long.MaxValue, null); // keeps everything
        int chunks = (int)((n + Chunk - 1) / Chunk);
        bool nan = false;
        // high: a histogram of the high 16 bits of every |δ|; otherwise of the low 16 bits of those whose high bits are `bin`
        long[] Histogram(bool high, uint bin)
        {
            var total = new long[1 << 16];
            var gate = new object();
            Parallel.For(0, chunks, Options(), () => (B: new float[Chunk], M: new float[Chunk], H: new long[1 << 16]), (c, _, s) =>
            {
                long start = (long)c * Chunk;
                int count = (int)Math.Min(Chunk, n - start);
                Read(baseSource, start, count, s.B);
                Read(model, start, count, s.M);
                var h = s.H;
                if (high)
                    for (int j = 0; j < count; j++)
                    {
                        uint bits = (uint)BitConverter.SingleToInt32Bits(s.M[j] - s.B[j]) & 0x7FFFFFFFu;
                        if (bits > 0x7F800000u) nan = true;
                        h[bits >> 16]++;
                    }
                else
                    for (int j = 0; j < count; j++)
                    {
                        uint bits = (uint)BitConverter.SingleToInt32Bits(s.M[j] - s.B[j]) & 0x7FFFFFFFu;
                        if ((bits >> 16) == bin) h[bits & 0xFFFF]++;
                    }
                return s;
            }, s => { lock (gate) for (int b = 0; b < total.Length; b++) total[b] += s.H[b]; });
            return total;
        }
        // the bin, counted from the top, where the running count reaches k; and how many lie above it
        static (int Bin, long Above) Find(long[] h, long k)
        {
            long above = 0;
            for (int b = h.Length - 1; b >= 0; b--)
            {
                if (above + h[b] >= k) return (b, above);
                above += h[b];
            }
            throw new InvalidOperationException("k exceeds the count");
        }
        var high = Histogram(true, 0);
        if (nan) return null;
        var (hb, aboveHigh) = Find(high, k);
        var low = Histogram(false, (uint)hb);
        var (lb, aboveLow) = Find(low, k - aboveHigh);
        uint t = ((uint)hb << 16) | (uint)lb;
        long greater = aboveHigh + aboveLow, equal = low[lb], kept = k - greater;
        if (kept >= equal) return new Trim(t, equal, equal, null);
        // Ties straddle the cut: the first `kept` equal entries in flat order stay; count them per chunk.
        var perChunk = new long[chunks];
        Parallel.For(0, chunks, Options(), () => (B: new float[Chunk], M: new float[Chunk]), (c, _, s) =>
        {
            long start = (long)c * Chunk;
            int count = (int)Math.Min(Chunk, n - start);
            Read(baseSource, start, count, s.B);
            Read(model, start, count, s.M);
            long e = 0;
            for (int j = 0; j < count; j++) if (((uint)BitConverter.SingleToInt32Bits(s.M[j] - s.B[j]) & 0x7FFFFFFFu) == t) e++;
            perChunk[c] = e;
            return s;
        }, _ => { });
        var before = new long[chunks];
        for (int c = 1; c < chunks; c++) before[c] = before[c - 1] + perChunk[c - 1];
        return new Trim(t, kept, equal, before);
    }

    /// <summary>One chunk through the whole pipeline, as TaskVectorMethod.Merge computes each element; false on a non-finite result.</summary>
    static bool MergeChunk(Setup s, (nint Address, DType Type)[] sources, Trim?[] trims, Scratch x, long start, int count, DType outType, nint target)
    {
        Read(sources[0], start, count, x.Base);
        for (int i = 0; i < s.N; i++)
        {
            var d = x.Models[i];
            Read(sources[i + 1], start, count, d);
            // δᵢ, sparsified: δ·mask (mask 1 or 0, as the 0/1 float mask multiplies), inverse_density: kept / p, else +0
            for (int j = 0; j < count; j++) d[j] -= x.Base[j];
            if (trims[i] is not { } trim) continue;
            float keepProbability = (float)s.Density[i];
            long seen = trim.EqualBefore?[start / Chunk] ?? 0;
            for (int j = 0; j < count; j++)
            {
                uint bits = (uint)BitConverter.SingleToInt32Bits(d[j]) & 0x7FFFFFFFu;
                bool keep = bits > trim.Bits || (bits == trim.Bits && (trim.EqualBefore is null ? trim.EqualKept > 0 : seen++ < trim.EqualKept));
                float masked = d[j] * (keep ? 1f : 0f);
                d[j] = s.Rescale == RescaleRule.InverseDensity ? (keep ? masked / keepProbability : 0f) : masked;
            }
        }
        var mixed = x.Mixed;
        var divisor = x.Divisor;
        var score = x.Score;
        Array.Clear(mixed, 0, count);
        if (s.Consensus)
        {
            // sign election on the stack (before or after the weights, as consensus_on says): Σ xᵢ or Σ sign(xᵢ) ≥ 0 → +1
            Array.Clear(score, 0, count);
            for (int i = 0; i < s.N; i++)
            {
                var d = x.Models[i];
                float w = s.W[i];
                for (int j = 0; j < count; j++)
                {
                    float v = s.ConsensusOnWeighted ? d[j] * w : d[j];
                    score[j] += s.Rule == ConsensusRule.Count ? Sign(v) : v;
                }
            }
            Array.Clear(divisor, 0, count);
            for (int i = 0; i < s.N; i++)
            {
                var d = x.Models[i];
                float w = s.W[i];
                for (int j = 0; j < count; j++)
                {
                    float weighted = d[j] * w;
                    float elected = score[j] >= 0 ? 1f : -1f;
                    float agree = Sign(s.ConsensusOnWeighted ? weighted : d[j]) == elected ? 1f : 0f;
                    mixed[j] += weighted * agree;
                    divisor[j] += s.Divisor == DivisorRule.Count ? agree : w * agree;
                }
            }
            if (s.Normalize && s.Divisor != DivisorRule.None)
                for (int j = 0; j < count; j++)
                {
                    float dv = s.Divisor == DivisorRule.Count ? Math.Max(divisor[j], 1f) : (divisor[j] == 0 ? 1f : divisor[j]);
                    mixed[j] /= dv;
                }
        }
        else
        {
            for (int i = 0; i < s.N; i++)
            {
                var d = x.Models[i];
                float w = s.W[i];
                for (int j = 0; j < count; j++) mixed[j] += d[j] * w;
            }
            if (s.Normalize && s.Divisor != DivisorRule.None)
            {
                // one divisor for every entry: the count, or Σ wᵢ summed in float32 (|Σ| < 1e-8 → 1)
                double sum = s.Divisor == DivisorRule.Count ? s.N : s.W.Aggregate(0f, (a, b) => a + b);
                if (s.Divisor == DivisorRule.Weights && Math.Abs(sum) < 1e-8) sum = 1;
                float fs = (float)sum;
                for (int j = 0; j < count; j++) mixed[j] /= fs;
            }
        }
        float lambda = (float)s.Lambda;
        bool scaled = s.Lambda != 1.0;
        for (int j = 0; j < count; j++)
        {
            float r = x.Base[j] + (scaled ? mixed[j] * lambda : mixed[j]);
            if (!float.IsFinite(r)) return false;
            mixed[j] = r;
        }
        return Store(mixed, count, outType, target, start);
    }

    static float Sign(float v) => v > 0 ? 1f : v < 0 ? -1f : 0f;

    /// <summary>Writes the chunk in the output dtype (bf16 rounded to nearest even as libtorch rounds); false when f16 overflows.</summary>
    static bool Store(float[] values, int count, DType outType, nint target, long start)
    {
        switch (outType)
        {
            case DType.F32:
                values.AsSpan(0, count).CopyTo(new Span<float>((float*)target + start, count));
                return true;
            case DType.BF16:
            {
                var to = new Span<ushort>((ushort*)target + start, count);
                for (int j = 0; j < count; j++)
                {
                    uint u = (uint)BitConverter.SingleToInt32Bits(values[j]);
                    to[j] = (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
                }
                return true;
            }
            default:
            {
                var to = new Span<Half>((Half*)target + start, count);
                for (int j = 0; j < count; j++)
                {
                    var h = (Half)values[j];
                    if (Half.IsInfinity(h)) return false;
                    to[j] = h;
                }
                return true;
            }
        }
    }
}
