using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Mixtral's sparse mixture of experts in place of the MLP (transformers' <c>MixtralSparseMoeBlock</c>): router
/// logits = gate(x); p = softmax in float32 over the experts; the top <c>num_experts_per_tok</c> probabilities,
/// renormalised to sum to 1 and cast to x's dtype, weight the outputs of the chosen SwiGLU experts
/// w2(silu(w1·x) ⊙ w3·x). Each expert runs only on the rows routed to it.
/// </summary>
public sealed class SparseMoeBlock : nn.Module<Tensor, ForwardContext, Tensor>
{
    private readonly AdaptableLinear gate;
    private readonly ModuleList<MoeExpert> experts;
    private readonly int topK;
    // One Scalar for the process (an implicit one can be finalised while the native call reads it; see CausalLM).
    private static readonly Scalar One = 1.ToScalar();

    public SparseMoeBlock(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        gate = new AdaptableLinear(nameof(gate), c.HiddenSize, c.NumLocalExperts, false, dtype);
        experts = new ModuleList<MoeExpert>(Enumerable.Range(0, c.NumLocalExperts).Select(e => new MoeExpert(e.ToString(), c, dtype)).ToArray());
        topK = c.NumExpertsPerToken;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, ForwardContext ctx)
    {
        using var scope = NewDisposeScope();
        var shape = x.shape;
        var rows = x.reshape(-1, shape[^1]);
        // A per-row expert mixture would see the gathered rows, not the batch's: refused by CausalLM.
        var output = RouteTopK(rows, gate.call(rows, ctx), topK, normalize: true, experts.Count, (e, picked) => experts[e].call(picked, null));
        return output.reshape(shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// transformers' top-k routing shared by the sparse blocks: p = softmax(logits) in float32, the top k per row
    /// (renormalised to sum to 1 when <paramref name="normalize"/>) cast to the rows' dtype weight the chosen
    /// experts, each run only on the rows routed to it; [rows, hidden].
    /// </summary>
    internal static Tensor RouteTopK(Tensor rows, Tensor logits, int topK, bool normalize, int expertCount, Func<int, Tensor, Tensor> expert)
    {
        var probabilities = nn.functional.softmax(logits, 1, ScalarType.Float32);
        var (top, chosen) = probabilities.topk(topK, dim: -1);
        var weights = (normalize ? top / top.sum(-1, keepdim: true) : top).to(rows.dtype);
        var output = zeros_like(rows);
        for (int e = 0; e < expertCount; e++)
        {
            var hits = chosen.eq(e).nonzero();                       // [m, 2]: (row, slot)
            if (hits.shape[0] == 0) continue;
            var row = hits.select(1, 0);
            var weight = weights.index(row, hits.select(1, 1)).unsqueeze(-1);
            output.index_add_(0, row, expert(e, rows.index_select(0, row)) * weight, One);
        }
        return output;
    }
}

/// <summary>One Mixtral expert: w2(silu(w1·x) ⊙ w3·x), the checkpoint's <c>experts.E.w1/w2/w3</c>.</summary>
public sealed class MoeExpert : nn.Module<Tensor, ForwardContext?, Tensor>
{
    private readonly AdaptableLinear w1;
    private readonly AdaptableLinear w2;
    private readonly AdaptableLinear w3;

    public MoeExpert(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        w1 = new AdaptableLinear(nameof(w1), c.HiddenSize, c.IntermediateSize, false, dtype);
        w2 = new AdaptableLinear(nameof(w2), c.IntermediateSize, c.HiddenSize, false, dtype);
        w3 = new AdaptableLinear(nameof(w3), c.HiddenSize, c.IntermediateSize, false, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, ForwardContext? ctx)
    {
        using var scope = NewDisposeScope();
        return w2.call(nn.functional.silu(w1.call(x, ctx)) * w3.call(x, ctx), ctx).MoveToOuterDisposeScope();
    }
}
