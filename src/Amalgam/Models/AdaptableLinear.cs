using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// A linear layer y = W·x + b that low-rank deltas can be attached to without touching W:
/// y = W·x + b + Σ sₖ·Bₖ·(Aₖ·x). Many experts can therefore share one base; folding a delta into W is the
/// separate, explicit <see cref="Fold"/>. A DoRA delta instead adds (g − 1)·W·x + g·s·B·A·x with g = m / ‖W + s·B·A‖
/// per output row (see <see cref="LowRankDelta.ApplyDora"/>); g is computed when it is attached.
/// </summary>
public sealed class AdaptableLinear : nn.Module<Tensor, ForwardContext?, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;
    private readonly List<LowRankDelta> deltas = [];
    // DoRA row factors of the attached DoRA deltas, by reference (not a module field: never a buffer).
    private readonly Dictionary<LowRankDelta, Tensor> doraFactors = new(ReferenceEqualityComparer.Instance);

    public AdaptableLinear(string name, long inFeatures, long outFeatures, bool hasBias, ScalarType dtype) : base(name)
    {
        weight = new Parameter(empty(outFeatures, inFeatures, dtype), requires_grad: false);
        if (hasBias) bias = new Parameter(empty(outFeatures, dtype), requires_grad: false);
        ModulePath = name;
        RegisterComponents();
    }

    /// <summary>The checkpoint module name (e.g. <c>model.layers.0.self_attn.q_proj</c>), for messages and adapters.</summary>
    public string ModulePath { get; internal set; }

    public long InFeatures => weight.shape[1];
    public long OutFeatures => weight.shape[0];
    public Tensor Weight => weight;
    public IReadOnlyList<LowRankDelta> Deltas => deltas;

    /// <summary>Adds a delta to this layer's output; its shapes must fit [out, r]·[r, in].</summary>
    public void Attach(LowRankDelta delta)
    {
        if (delta.A.dim() != 2 || delta.B.dim() != 2 || delta.A.shape[1] != InFeatures || delta.B.shape[0] != OutFeatures || delta.B.shape[1] != delta.A.shape[0])
            throw new ArgumentException($"{ModulePath}: delta of shapes A [{string.Join(", ", delta.A.shape)}], B [{string.Join(", ", delta.B.shape)}] does not fit a [{OutFeatures}, {InFeatures}] layer");
        if (delta.IsDora) SetDoraFactor(delta);
        deltas.Add(delta);
    }

    void SetDoraFactor(LowRankDelta delta)
    {
        if (delta.Magnitude!.dim() != 1 || delta.Magnitude.shape[0] != OutFeatures)
            throw new ArgumentException($"{ModulePath}: DoRA magnitude of shape [{string.Join(", ", delta.Magnitude.shape)}] does not fit a layer with {OutFeatures} outputs");
        using var _ = no_grad();
        var factor = delta.DoraFactor(weight).DetachFromDisposeScope();
        if (doraFactors.Remove(delta, out var old)) old.Dispose();
        doraFactors[delta] = factor;
    }

    /// <summary>The stacked factors of an installed expert library, mixed per row when the forward carries a mixing policy.</summary>
    public StackedFactors? Mixture { get; internal set; }

    public bool Detach(LowRankDelta delta)
    {
        if (doraFactors.Remove(delta, out var factor)) factor.Dispose();
        return deltas.Remove(delta);
    }

    public void DetachAll()
    {
        foreach (var f in doraFactors.Values) f.Dispose();
        doraFactors.Clear();
        deltas.Clear();
    }

    /// <summary>
    /// W ← W + s·B·A, or for DoRA W ← m ⊙ (W + s·B·A) / ‖W + s·B·A‖ per row (computed in float32, stored in W's
    /// dtype; the bias is untouched, as PEFT's merge leaves it). Irreversible for bfloat16 weights.
    /// </summary>
    public void Fold(LowRankDelta delta)
    {
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var merged = delta.IsDora ? delta.DoraWeight(weight) : weight.to(ScalarType.Float32) + delta.Dense();
            weight.copy_(merged.to(weight.dtype));
        }
        // Attached DoRA deltas normalise by the current W.
        foreach (var d in doraFactors.Keys.ToList()) SetDoraFactor(d);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) DetachAll();
        base.Dispose(disposing);
    }

    /// <summary>The layer alone (attached deltas included, no per-row mixture).</summary>
    public Tensor forward(Tensor x) => forward(x, null);

    public override Tensor forward(Tensor x, ForwardContext? context)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.linear(x, weight, bias);
        var plain = y;
        foreach (var delta in deltas)
            y = doraFactors.TryGetValue(delta, out var g)
                ? Scalars.Plus(y, delta.ApplyDora(x, bias is null ? plain : plain - bias, g, y.dtype))
                : Scalars.Plus(y, delta.Apply(x, y.dtype));
        // The library picks the path (per-row compacted, dense or per-expert; see StackedFactors.AddTo).
        if (Mixture is { } mixture && context?.Mixing is { } policy) y = mixture.AddTo(y, x, policy.Weights(ModulePath, x), policy.Cache);
        return y.MoveToOuterDisposeScope();
    }
}
