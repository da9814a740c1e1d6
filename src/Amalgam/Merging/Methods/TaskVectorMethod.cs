using TorchSharp;
using Amalgam.Merging.Parts;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// The one task-arithmetic pipeline behind task_arithmetic, ties, dare_linear, dare_ties, magnitude_prune,
/// breadcrumbs, breadcrumbs_ties, della and della_linear:
/// δᵢ = θᵢ − θ₀ → sparsify (keep-mask) → rescale → weight (wᵢ·δ̃ᵢ) → sign consensus (optional) →
/// combine with a divisor → scale by λ → θ₀ + λ·mixed.
/// The named methods differ only in their <see cref="TaskVectorRecipe"/>; flavors change the defaults.
/// </summary>
public sealed class TaskVectorMethod : IMergeMethod, IRowBlockMethod
{
    readonly TaskVectorRecipe recipe;

    public TaskVectorMethod(TaskVectorRecipe recipe)
    {
        this.recipe = recipe;
        Parameters = BuildParameters(recipe);
    }

    public TaskVectorRecipe Recipe => recipe;
    public string Name => recipe.Name;
    public string Description => recipe.Description;
    public IReadOnlyList<ParameterSpec> Parameters { get; }
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public bool IsRandomized => recipe.Sparsifier is SparsifierKind.Bernoulli or SparsifierKind.Della;

    bool HasMagnitudeTrim => recipe.Sparsifier == SparsifierKind.Magnitude;

    public IWholeModelPass? CreatePass(MergeParameters global, int models) =>
        HasMagnitudeTrim && TaskVectorOptions.Resolve(recipe, global).TrimScope == TrimScope.Model ? new WholeModelTopK(models) : null;

    public Tensor Merge(MergeTensorInputs inputs) => Merge(inputs, masks: null);

    /// <summary>
    /// The seam for reference tests: with <paramref name="masks"/> (one 0/1 keep-mask per model) the sparsifier's
    /// random draw is replaced by the given masks, and everything after it is deterministic.
    /// </summary>
    internal Tensor Merge(MergeTensorInputs inputs, IReadOnlyList<Tensor?>? masks)
    {
        using var scope = NewDisposeScope();
        var baseT = inputs.Base ?? throw new InvalidDataException($"tensor '{inputs.Name}': {Name} needs a base model");
        var o = TaskVectorOptions.Resolve(recipe, inputs.Global);
        int n = inputs.Models.Count;
        if (n == 0) return baseT.clone().MoveToOuterDisposeScope();
        if (masks is not null && masks.Count != n) throw new ArgumentException($"expected {n} masks, got {masks.Count}");

        // One preallocated [n, ...] stack; each model's delta is sparsified, copied in and freed at once, and the
        // stack is then weighted in place: peak ≈ inputs + n + a few tensors, not several model-sized stacks.
        var stacked = empty([n, .. baseT.shape], dtype: baseT.dtype, device: baseT.device);
        var weights = new double[n];
        for (int i = 0; i < n; i++)
        {
            // each expert's delta, magnitudes and masks are freed before the next expert's are made
            using var expertScope = NewDisposeScope();
            var delta = inputs.Models[i].to(baseT.dtype) - baseT;
            weights[i] = ParameterValues.PerModel(inputs, i, "weight", 1.0);
            stacked[i].copy_(Sparsify(inputs, i, delta, o, masks?[i]));
        }

        var shape = new long[stacked.dim()];
        Array.Fill(shape, 1L);
        shape[0] = n;
        var w = tensor(weights, dtype: baseT.dtype, device: baseT.device).reshape(shape);

        Tensor? agree = null;
        if (recipe.Consensus && o.ConsensusOn != ConsensusInput.Weighted)
            agree = SignConsensus.AgreementMask(stacked, o.Consensus);
        var weighted = stacked.mul_(w);
        if (recipe.Consensus && o.ConsensusOn == ConsensusInput.Weighted)
            agree = SignConsensus.AgreementMask(weighted, o.Consensus);

        var mixed = Combine.Mix(weighted, w, agree, o.Divisor, o.Normalize);
        if (o.Lambda != 1.0) mixed = mixed * o.Lambda;
        return (baseT + mixed).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Every step after the sparsifier is element-wise (the divisor without consensus is one scalar), so a tensor
    /// merges in row blocks once each model's keep-mask is known: a magnitude or breadcrumbs mask is computed here
    /// by the same functions on the whole |δᵢ| (built block by block), and each block then runs <see cref="Merge"/>
    /// with its slice of the masks, which gives the same bits as the whole tensor. Not for random sparsifiers (their
    /// draws follow the whole tensor), the L1 rescale (a whole-tensor norm) or trim_scope: model.
    /// </summary>
    public IRowBlockMerger? Prepare(MergeTensorInputs header, long rows, Func<long, long, MergeTensorInputs> block)
    {
        if (header.Base is null || header.Models.Count == 0 || header.Base.dim() == 0 || IsRandomized) return null;
        var o = TaskVectorOptions.Resolve(recipe, header.Global);
        bool sparsifies = recipe.Sparsifier != SparsifierKind.None;
        if (sparsifies && (o.Rescale == RescaleRule.L1 || (HasMagnitudeTrim && o.TrimScope == TrimScope.Model))) return null;
        int n = header.Models.Count;
        var density = Enumerable.Range(0, n).Select(i => sparsifies ? ParameterValues.PerModel(header, i, "density", 1.0) : 1.0).ToArray();
        if (density.Any(double.IsNaN)) return null;
        var trimmed = Enumerable.Range(0, n).Where(i => density[i] is >= 0 and < 1).ToList();
        var masks = new Tensor?[n];
        if (trimmed.Count > 0)
        {
            long rowElements = header.Base.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            long blockRows = Math.Max(1, (1L << 17) / Math.Max(1, rowElements));
            try
            {
                // one model at a time, so that a single float32 |δᵢ| of the whole tensor is alive at once
                foreach (int i in trimmed)
                {
                    using var magnitude = empty(rows * rowElements, dtype: header.Base.dtype, device: header.Base.device);
                    for (long start = 0; start < rows; start += blockRows)
                    {
                        using var scope = NewDisposeScope();
                        var b = block(start, Math.Min(blockRows, rows - start));
                        // |δᵢ| exactly as Merge and Sparsifiers compute it
                        magnitude.narrow(0, start * rowElements, b.Base!.numel()).copy_((b.Models[i].to(b.Base.dtype) - b.Base).abs().reshape(-1));
                    }
                    masks[i] = recipe.Sparsifier == SparsifierKind.Breadcrumbs
                        ? Sparsifiers.BreadcrumbsKeep(magnitude, density[i], ParameterValues.PerModel(header, i, "gamma", 0.01))
                        : Sparsifiers.MagnitudeKeep(magnitude, density[i]);
                }
            }
            catch
            {
                foreach (var m in masks) m?.Dispose();
                throw;
            }
        }
        return new BlockMerger(this, masks);
    }

    sealed class BlockMerger(TaskVectorMethod method, Tensor?[] masks) : IRowBlockMerger
    {
        public Tensor Merge(long start, MergeTensorInputs block)
        {
            using var scope = NewDisposeScope();
            var shape = block.Base!.shape;
            long at = start * shape.Skip(1).Aggregate(1L, (a, b) => a * b), count = block.Base.numel();
            var slices = masks.Select(m => m?.narrow(0, at, count).reshape(shape)).ToArray();
            return method.Merge(block, slices).MoveToOuterDisposeScope();
        }

        public void Dispose() { foreach (var m in masks) m?.Dispose(); }
    }

    Tensor Sparsify(MergeTensorInputs inputs, int i, Tensor delta, TaskVectorOptions o, Tensor? injected)
    {
        if (recipe.Sparsifier == SparsifierKind.None) return delta;
        double density = ParameterValues.PerModel(inputs, i, "density", 1.0);
        if (density >= 1) return delta;
        if (density < 0) throw new InvalidDataException($"parameter 'density': must be ≥ 0, got {density} (tensor '{inputs.Name}')");
        Tensor keepProbability = tensor(density, dtype: delta.dtype, device: delta.device);
        Tensor mask;
        switch (recipe.Sparsifier)
        {
            case SparsifierKind.Magnitude:
                mask = injected ?? (o.TrimScope == TrimScope.Model
                    ? (inputs.Pass as WholeModelTopK ?? throw new InvalidDataException($"tensor '{inputs.Name}': trim_scope: model needs the whole-model pass (IMergeMethod.CreatePass)")).Mask(inputs.Name, i, delta)
                    : Sparsifiers.Magnitude(delta, density));
                break;
            case SparsifierKind.Breadcrumbs:
                mask = injected ?? Sparsifiers.Breadcrumbs(delta, density, ParameterValues.PerModel(inputs, i, "gamma", 0.01));
                break;
            case SparsifierKind.Bernoulli:
                mask = injected ?? Sparsifiers.Bernoulli(delta, density, inputs.Random);
                break;
            case SparsifierKind.Della:
                keepProbability = Sparsifiers.DellaProbabilities(delta, density, ParameterValues.PerModel(inputs, i, "epsilon", 0.15));
                mask = injected ?? Sparsifiers.Della(keepProbability, inputs.Random);
                break;
            default:
                throw new InvalidOperationException(recipe.Sparsifier.ToString());
        }
        return Rescale.Apply(delta, mask.to(delta.dtype), o.Rescale, keepProbability);
    }

    static IReadOnlyList<ParameterSpec> BuildParameters(TaskVectorRecipe m)
    {
        var k = TaskVectorOptions.Defaults(m, Flavor.Mergekit);
        var list = new List<ParameterSpec>
        {
            new("flavor", ParameterScope.Global, ParameterKind.Choice, "mergekit",
                "preset of the conventions below: mergekit (default), peft or fusion_bench; explicit values override it", TaskVectorOptions.FlavorNames),
            new("lambda", ParameterScope.Global, ParameterKind.Number, k.Lambda, "scales the mixed delta (flavor default: mergekit 1, peft 1, fusion_bench 0.3)"),
            new("normalize", ParameterScope.Global, ParameterKind.Bool, k.Normalize, "divide the mixed delta by the divisor (flavor-dependent default)"),
            new("divisor", ParameterScope.Global, ParameterKind.Choice, "weights",
                "what normalize divides by: weights (Σwᵢmᵢ), count (Σmᵢ) or none (flavor default: mergekit weights, peft count, fusion_bench none)", TaskVectorOptions.DivisorNames),
            new("int8_mask", ParameterScope.Global, ParameterKind.Bool, false, "accepted for mergekit compatibility; no effect"),
            new("weight", ParameterScope.PerModel, ParameterKind.Number, 1.0, "wᵢ, multiplies the model's task vector (negative: subtracts it)"),
        };
        if (m.Sparsifier != SparsifierKind.None)
        {
            list.Add(new("rescale", ParameterScope.Global, ParameterKind.Choice, k.Rescale switch { RescaleRule.L1 => "l1", RescaleRule.InverseDensity => "inverse_density", _ => "none" },
                "rescale kept entries: l1 (match the L1 norm), inverse_density (÷ keep probability) or none; true/false = l1/none (flavor-dependent default)", TaskVectorOptions.RescaleNames, TaskVectorOptions.RescaleAliases));
            list.Add(new("density", ParameterScope.PerModel, ParameterKind.Number, 1.0, "fraction of entries kept (1 = no sparsification)",
                Range: NumberRange.Fraction, MergekitRange: NumberRange.NonNegative));
        }
        if (m.Sparsifier == SparsifierKind.Magnitude)
            list.Add(new("trim_scope", ParameterScope.Global, ParameterKind.Choice, "tensor",
                "rank magnitudes per tensor, or across the whole model (flavor default: fusion_bench model, others tensor)", TaskVectorOptions.TrimScopeNames));
        if (m.Sparsifier == SparsifierKind.Breadcrumbs)
            list.Add(new("gamma", ParameterScope.PerModel, ParameterKind.Number, 0.01, "fraction of largest-magnitude entries dropped as outliers", Range: NumberRange.Fraction));
        if (m.Sparsifier == SparsifierKind.Della)
            list.Add(new("epsilon", ParameterScope.PerModel, ParameterKind.Number, 0.15, "keep probabilities span density ± epsilon by magnitude rank", Range: new NumberRange(0, 0.5, MaxOpen: true)));
        if (m.Consensus)
        {
            list.Add(new("consensus", ParameterScope.Global, ParameterKind.Choice, "sum",
                "sign election: sum (sign of the sum, PEFT 'total') or count (sign of the sum of signs, PEFT 'frequency')", TaskVectorOptions.ConsensusNames));
            list.Add(new("consensus_on", ParameterScope.Global, ParameterKind.Choice, "weighted",
                "elect signs from weighted wᵢδ̃ᵢ (mergekit) or unweighted δ̃ᵢ (peft, fusion_bench)", TaskVectorOptions.ConsensusOnNames));
        }
        return list;
    }

    /// <summary>The nine named configurations of the pipeline, with mergekit's defaults.</summary>
    public static IEnumerable<TaskVectorMethod> All() =>
    [
        new(new("task_arithmetic", "θ₀ + λ·Σ wᵢδᵢ (Ilharco et al. 2023)", SparsifierKind.None, false, false, false)),
        new(new("ties", "TIES: magnitude trim, sign election, disjoint mean (Yadav et al. 2023)", SparsifierKind.Magnitude, true, true, false)),
        new(new("dare_linear", "DARE: Bernoulli drop and rescale, then task arithmetic (Yu et al. 2024)", SparsifierKind.Bernoulli, false, false, true)),
        new(new("dare_ties", "DARE drop and rescale, then TIES sign election", SparsifierKind.Bernoulli, true, false, true)),
        new(new("magnitude_prune", "magnitude top-k trim, then task arithmetic (PEFT's name; no sign election)", SparsifierKind.Magnitude, false, false, false)),
        new(new("breadcrumbs", "Model Breadcrumbs: drop outliers and small entries, then task arithmetic (Davari & Belilovsky 2024)", SparsifierKind.Breadcrumbs, false, false, false)),
        new(new("breadcrumbs_ties", "Model Breadcrumbs with TIES sign election", SparsifierKind.Breadcrumbs, true, false, false)),
        new(new("della", "DELLA: magnitude-rank-based drop probabilities, rescale, TIES election (Deep et al. 2024)", SparsifierKind.Della, true, true, true)),
        new(new("della_linear", "DELLA drop and rescale, then task arithmetic", SparsifierKind.Della, false, false, true)),
    ];
}
