using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// A decoder of the Llama, Mistral, Qwen2/3, Gemma 2/3, Phi-3, Mixtral, Qwen2-MoE and GPT-2 families (configured by <see cref="DecoderConfig"/>,
/// one code path) whose module names are the checkpoint's keys, so weights load one to one (GPT-2's are mapped, <see cref="Gpt2Checkpoint"/>). Build it with
/// <see cref="CheckpointLoader"/>.
/// </summary>
public sealed class CausalLM : nn.Module<DecoderInput, DecoderOutput>
{
    private readonly DecoderStack model;
    private readonly AdaptableLinear? lm_head;
    private readonly RotaryEmbedding? rope;
    private readonly RotaryEmbedding? localRope;

    public CausalLM(DecoderConfig config, ScalarType dtype) : base(config.Architecture)
    {
        Config = config;
        Dtype = dtype;
        model = new DecoderStack(nameof(model), config, dtype);
        if (!config.TieWordEmbeddings) lm_head = new AdaptableLinear(nameof(lm_head), config.HiddenSize, config.VocabSize, false, dtype);
        if (config.Rotary) rope = new RotaryEmbedding(config.RotaryDim, config.RopeTheta, config.Scaling, config.MaxPositionEmbeddings);
        if (config.HasLocalRope) localRope = new RotaryEmbedding(config.RotaryDim, config.LocalRopeTheta, maxPositions: config.MaxPositionEmbeddings);
        RegisterComponents();
        var linears = new SortedDictionary<string, AdaptableLinear>(StringComparer.Ordinal);
        foreach (var (name, module) in named_modules())
            if (module is AdaptableLinear linear) { linear.ModulePath = name; linears[name] = linear; }
        Linears = linears;
    }

    // One Scalar for the whole process: an implicitly converted Scalar can be finalised by the GC while the native
    // call still reads it (seen as "Expected false to be true ... toFloat" from masked_fill under GC pressure).
    private static readonly Scalar MaskedOut = float.MinValue.ToScalar(), Zero = 0L.ToScalar();

    public DecoderConfig Config { get; }
    public ScalarType Dtype { get; }

    /// <summary>Every linear layer by checkpoint module name (e.g. <c>model.layers.0.mlp.down_proj</c>, <c>lm_head</c>).</summary>
    public IReadOnlyDictionary<string, AdaptableLinear> Linears { get; }

    /// <summary>The name of the output projection, which "all-linear" adapters leave out.</summary>
    public const string OutputLayer = "lm_head";

    public override DecoderOutput forward(DecoderInput input)
    {
        using var scope = NewDisposeScope();
        var hidden = HiddenStates(input);
        var logits = lm_head is null ? nn.functional.linear(hidden, model.Embeddings.Weight) : lm_head.call(hidden, null);
        if (Config.FinalSoftcap is double cap) logits = Scalars.SoftCap(logits, cap);
        return new DecoderOutput(logits.to(Precision.Reduction).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The hidden states after the final norm, [batch, positions, hidden] in the model's dtype (only the last
    /// position when <see cref="DecoderInput.LastPositionOnly"/>): what routers read as features. With
    /// <paramref name="layers"/> = k (0 ≤ k ≤ L), only the embeddings and the first k layers run and the residual
    /// stream after layer k comes back, unnormed (cheaper router features; k = 0 is the scaled token embeddings).
    /// </summary>
    public Tensor HiddenStates(DecoderInput input, int? layers = null)
    {
        if (layers is int k && (k < 0 || k > Config.NumHiddenLayers))
            throw new ArgumentException($"layers: must be between 0 and {Config.NumHiddenLayers}, got {k}", nameof(layers));
        using var scope = NewDisposeScope();
        var ids = input.InputIds;
        if (ids.dim() != 2) throw new ArgumentException($"input ids must be [batch, positions], got [{string.Join(", ", ids.shape)}]");
        long b = ids.shape[0], t = ids.shape[1];
        var stepMask = input.AttentionMask?.to(ScalarType.Int64) ?? ones(b, t, ScalarType.Int64);
        var mask = input.Cache?.AppendMask(stepMask) ?? stepMask;
        long all = mask.shape[1], past = all - t;
        Config.CheckSequenceLength((int)Math.Min(all, int.MaxValue));

        // Real tokens are numbered 0, 1, ... whatever the padding side; padding positions are clamped to 0.
        var positions = Scalars.SubInteger(mask.cumsum(1), 1).clamp_min(Zero).narrow(1, past, t);
        // One new position sees every earlier one: only padding is masked, no causal comparison is needed.
        var allowed = t == 1 ? mask.ne(0).unsqueeze(1)                                             // [b, new, all]
            : (arange(all).unsqueeze(0) <= Scalars.AddInteger(arange(t), past).unsqueeze(1)).unsqueeze(0).logical_and(mask.unsqueeze(1).to(ScalarType.Bool));
        var (cos, sin) = rope?.Angles(positions, Dtype) ?? (empty(0, dtype: Dtype), empty(0, dtype: Dtype));
        var context = new ForwardContext(cos, sin, Additive(allowed), input.Cache, input.Mixing) { Layers = layers, Positions = positions };
        if (Config.EffectiveSlidingWindow is int window)
        {
            // A query at index i sees keys at indices > i − window (indices count padding, as transformers' do).
            var near = arange(all).unsqueeze(0) > Scalars.AddInteger(arange(t), past - window).unsqueeze(1);     // [new, all]
            context = context with { SlidingMask = Additive(allowed.logical_and(near.unsqueeze(0))) };
        }
        if (localRope is not null)
        {
            var (localCos, localSin) = localRope.Angles(positions, Dtype);
            context = context with { LocalCos = localCos, LocalSin = localSin };
        }

        if (input.Mixing is not null && !Linears.Values.Any(l => l.Mixture is not null))
            throw new InvalidOperationException("DecoderInput.Mixing is set but no expert library is installed");
        if (input.Mixing is not null && Linears.Values.FirstOrDefault(l => l.Mixture is not null && (l.ModulePath.Contains(".block_sparse_moe.experts.", StringComparison.Ordinal) || l.ModulePath.Contains(".mlp.experts.", StringComparison.Ordinal))) is { } routed)
            throw new NotSupportedException($"{routed.ModulePath}: per-row expert mixing inside a sparse-MoE expert is not supported (each expert sees only the rows routed to it)");
        if (input.LayerInputs is not null) context = context with { LayerInputs = input.LayerInputs };
        var hidden = model.call(ids, context);
        if (input.LastPositionOnly && t > 1)
        {
            // A fresh tensor, not a narrowed view: libtorch 2.10's bfloat16 linear takes a slow path on the view's
            // offset storage (47 ms instead of 3 ms for a 32000-row output projection); clone keeps the offset.
            var last = empty([b, 1, hidden.shape[2]], dtype: hidden.dtype, device: hidden.device);
            hidden = last.copy_(hidden.narrow(1, t - 1, 1));
        }
        return hidden.MoveToOuterDisposeScope();
    }

    static Tensor Additive(Tensor allowed) =>
        zeros(allowed.shape, Precision.Reduction).masked_fill(allowed.logical_not(), MaskedOut).unsqueeze(1);

    /// <summary>Inference convenience: float32 logits of every position for one unpadded sequence.</summary>
    public Tensor Logits(IReadOnlyList<long> ids)
    {
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var input = tensor(ids.ToArray(), ScalarType.Int64).unsqueeze(0);
        return forward(new DecoderInput(input)).Logits[0].MoveToOuterDisposeScope();
    }
}
