using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// mergekit's cabs (CABS, Conflict-Aware and Balanced Sparsification, Yang et al. 2025, arXiv 2503.01874), per
/// tensor: the models are taken one after another (in <c>pruning_order</c>, else sorted by name); each one's task
/// vector δᵢ = θᵢ − θ₀ is restricted to the entries no earlier model kept (conflict-aware), then pruned n:m
/// (balanced): flattened, zero-padded to a multiple of m, and in every block of m consecutive entries the n of
/// largest magnitude are kept (ties: lower index first). The kept positions, zeros among them, are closed to later
/// models; result θ₀ + Σ wᵢ·(pruned δᵢ). n:m per model: its own <c>n_val</c>/<c>m_val</c>, else the global
/// <c>default_n_val</c>/<c>default_m_val</c>, else 1:4 (mergekit's fallback).
/// </summary>
public sealed class Cabs : IMergeMethod
{
    public string Name => "cabs";
    public string Description => "CABS: models in turn take the n largest of every m entries still free (Yang et al. 2025, mergekit cabs)";
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public bool IsRandomized => false;
    public bool MergesBaseAlone => true;
    public IReadOnlyList<string> TopLevelParameters => ["default_n_val", "default_m_val", "pruning_order"];

    /// <summary>The default of a parameter that is optional and has no value when not given (a non-null default marks it optional).</summary>
    const string Unset = "unset";

    static readonly NumberRange Count = new(0, double.PositiveInfinity, MaxOpen: true, Integer: true);
    static readonly NumberRange BlockSize = new(1, double.PositiveInfinity, MaxOpen: true, Integer: true);

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("weight", ParameterScope.PerModel, ParameterKind.Number, 1.0, "wᵢ, scales the model's pruned task vector"),
        new("n_val", ParameterScope.PerModel, ParameterKind.Number, Unset, "n of n:m: entries kept per block", Range: Count),
        new("m_val", ParameterScope.PerModel, ParameterKind.Number, Unset, "m of n:m: the block length", Range: BlockSize),
        new("default_n_val", ParameterScope.Global, ParameterKind.Number, Unset, "n for models without their own n_val/m_val", Range: Count),
        new("default_m_val", ParameterScope.Global, ParameterKind.Number, Unset, "m for models without their own n_val/m_val", Range: BlockSize),
        new("pruning_order", ParameterScope.Global, ParameterKind.List, Unset, "the models in the order they choose entries (default: sorted by name)"),
    ];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        var b = inputs.Base ?? throw new InvalidDataException($"tensor '{inputs.Name}': cabs needs a base model");
        var result = b.clone();
        var taken = zeros(b.numel(), dtype: ScalarType.Bool);
        foreach (int i in Order(inputs))
        {
            var (n, m) = Ratio(inputs, i);
            var candidate = (inputs.Models[i].to(b.dtype) - b).reshape(-1) * taken.logical_not();
            var keep = KeepNofM(candidate, n, m);
            double w = ParameterValues.PerModel(inputs, i, "weight", 1.0);
            result.add_((candidate * keep).reshape(b.shape), alpha: w);
            taken.logical_or_(keep);
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The n entries of largest magnitude in every block of m (the last block zero-padded), as a flat bool mask.</summary>
    static Tensor KeepNofM(Tensor flat, long n, long m)
    {
        long count = flat.numel();
        if (n == 0 || count == 0) return zeros(count, dtype: ScalarType.Bool);
        if (n == m) return ones(count, dtype: ScalarType.Bool);
        long padding = (m - count % m) % m;
        var blocks = (padding > 0 ? cat([flat, zeros(padding, dtype: flat.dtype)], 0) : flat).reshape(-1, m);
        var order = blocks.abs().sort(dim: 1, descending: true, stable: true).Indices.narrow(1, 0, n);
        var keep = zeros(blocks.shape, dtype: ScalarType.Bool).scatter_(1, order, ones(order.shape, dtype: ScalarType.Bool));
        return keep.reshape(-1).narrow(0, 0, count);
    }

    /// <summary>(n, m) for model i: its own pair, else the global defaults, else 1:4.</summary>
    static (long N, long M) Ratio(MergeTensorInputs inputs, int i)
    {
        var n = ParameterValues.PerModel(inputs, i, "n_val", double.NaN);
        var m = ParameterValues.PerModel(inputs, i, "m_val", double.NaN);
        string who = inputs.ModelNames is { } names ? $"model '{names[i]}'" : $"model {i}";
        if (double.IsNaN(n) != double.IsNaN(m))
            throw new InvalidDataException($"tensor '{inputs.Name}': cabs: {who} has {(double.IsNaN(n) ? "m_val without n_val" : "n_val without m_val")}; give both");
        if (double.IsNaN(n))
        {
            n = ParameterValues.Number(inputs.Global, "default_n_val") ?? double.NaN;
            m = ParameterValues.Number(inputs.Global, "default_m_val") ?? double.NaN;
            if (double.IsNaN(n) != double.IsNaN(m))
                throw new InvalidDataException($"tensor '{inputs.Name}': cabs: {(double.IsNaN(n) ? "default_m_val without default_n_val" : "default_n_val without default_m_val")}; give both");
            if (double.IsNaN(n)) (n, m) = (1, 4);
        }
        if (n > m) throw new InvalidDataException($"tensor '{inputs.Name}': cabs: {who}: n = {n} is larger than m = {m}");
        return ((long)n, (long)m);
    }

    /// <summary>
    /// The order models choose in: <c>pruning_order</c> (the base's name skipped), else sorted by name (ordinal). Every
    /// model must be named exactly once: mergekit silently leaves out a model the order does not name, and merges twice one it names twice.
    /// </summary>
    static IReadOnlyList<int> Order(MergeTensorInputs inputs)
    {
        int count = inputs.Models.Count;
        var names = inputs.ModelNames ?? Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var given = inputs.Global.List("pruning_order");
        if (given is null)
            return Enumerable.Range(0, count).OrderBy(i => names[i], StringComparer.Ordinal).ToList();
        static string Full(string s) { try { return Path.GetFullPath(s); } catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { return s; } }
        var order = new List<int>();
        foreach (var entry in given)
        {
            bool Is(string name) => name == entry || name == Full(entry);
            if (inputs.BaseName is { } baseName && Is(baseName)) continue;
            int i = Enumerable.Range(0, count).FirstOrDefault(j => Is(names[j]), -1);
            if (i < 0) throw new InvalidDataException($"parameter 'pruning_order': '{entry}' is not one of the merged models ({string.Join(", ", names)})");
            if (order.Contains(i)) throw new InvalidDataException($"parameter 'pruning_order': '{entry}' is named twice");
            order.Add(i);
        }
        if (order.Count < count)
            throw new InvalidDataException($"parameter 'pruning_order': '{names[Enumerable.Range(0, count).First(j => !order.Contains(j))]}' is missing (mergekit would silently leave it out of the merge)");
        return order;
    }
}
